"""Bulk writes for the settlement's hot path: many rows in one short statement.

On PostgreSQL each column of many rows travels as one array parameter (``UNNEST``), so a
statement's text is the same whatever the number of rows: the driver parses it once and caches
it, where a VALUES list of thousands of placeholders would be parsed again every time. SQLite, and
a single row, get a VALUES list.
Like ``bulk_create`` and ``bulk_update`` these send no signals; unlike them, they build no
expression per field and row, which costs more in Python than the database spends on the write.
Only quoted names from the models' metadata are formatted into the SQL; every value is a parameter.
"""

from django.db import connections, router

ROWS_PER_STATEMENT = 500  # SQLite: it caps the number of parameters in a statement


def _connection(model):
    return connections[router.db_for_write(model)]


def _chunks(rows: list, connection) -> list[list]:
    if connection.vendor == "postgresql":
        return [rows]
    return [rows[start : start + ROWS_PER_STATEMENT] for start in range(0, len(rows), ROWS_PER_STATEMENT)]


def _source(columns, rows: list[list], connection) -> tuple[str, list]:
    """A SELECT of ``rows`` (each a list of Python values, one per column), and its parameters."""
    if connection.vendor == "postgresql" and len(rows) > 1:
        arrays = [
            [field.get_db_prep_save(row[i], connection) for row in rows] for i, field in enumerate(columns)
        ]
        casts = ", ".join(f"%s::{field.cast_db_type(connection)}[]" for field in columns)
        return f"SELECT * FROM UNNEST({casts})", arrays  # noqa: S608
    if connection.vendor == "postgresql":
        # A parameter in VALUES has no type of its own: say which, or NULLs and dates fail.
        row = "(" + ", ".join(f"CAST(%s AS {field.cast_db_type(connection)})" for field in columns) + ")"
    else:
        row = "(" + ", ".join("%s" for _field in columns) + ")"
    params = [
        field.get_db_prep_save(value, connection)
        for values in rows
        for field, value in zip(columns, values, strict=True)
    ]
    return "VALUES " + ", ".join([row] * len(rows)), params


def update_rows(objs, fields: list[str]) -> int:
    """Write ``fields`` of each of ``objs`` (one model) back to its row, in one statement.
    Sets no ``auto_now`` fields. Returns the number of rows updated."""
    objs = list(objs)
    if not objs:
        return 0
    meta = objs[0]._meta
    connection = _connection(type(objs[0]))
    quote = connection.ops.quote_name
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    if connection.vendor == "postgresql":
        names = [quote(field.column) for field in columns]
        alias = f"v ({', '.join(names)})"
    else:
        names = [f"column{i}" for i in range(1, len(columns) + 1)]  # SQLite's names for VALUES columns
        alias = "v"
    assignments = ", ".join(
        f"{quote(field.column)} = v.{name}" for field, name in zip(columns[1:], names[1:], strict=True)
    )
    updated = 0
    for chunk in _chunks(objs, connection):
        source, params = _source(
            columns, [[getattr(obj, field.attname) for field in columns] for obj in chunk], connection
        )
        sql = (
            f"UPDATE {table} SET {assignments} FROM ({source}) AS {alias} "  # noqa: S608
            f"WHERE {table}.{pk} = v.{names[0]}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated


def insert_rows(objs) -> list:
    """Insert unsaved ``objs`` (one model) in one statement and set their primary keys. Fields
    are filled as ``save`` does (``auto_now_add``, defaults). Returns ``objs``."""
    objs = list(objs)
    if not objs:
        return objs
    meta = objs[0]._meta
    connection = _connection(type(objs[0]))
    quote = connection.ops.quote_name
    columns = [field for field in meta.concrete_fields if field is not meta.pk]
    names = ", ".join(quote(field.column) for field in columns)
    for chunk in _chunks(objs, connection):
        source, params = _source(
            columns, [[field.pre_save(obj, add=True) for field in columns] for obj in chunk], connection
        )
        sql = f"INSERT INTO {quote(meta.db_table)} ({names}) {source} RETURNING {quote(meta.pk.column)}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            keys = cursor.fetchall()
        # Rows come back in the order they were given, as Django's bulk_create relies on too.
        for obj, (pk,) in zip(chunk, keys, strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, connection.alias
    return objs
