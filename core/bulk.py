"""Bulk writes for the settlement's hot path: many rows in one short statement.

On PostgreSQL each column of many rows travels as one array parameter (``UNNEST``), so a
statement's text is the same whatever the number of rows: the driver parses it once and caches
it, where a VALUES list of thousands of placeholders would be parsed again every time. SQLite, and
a single row, get a VALUES list.
Like ``bulk_create`` and ``bulk_update`` these send no signals; unlike them, they build no
expression per field and row, which costs more in Python than the database spends on the write.
Only quoted names from the models' metadata are formatted into the SQL; every value is a parameter.
"""

import datetime
import operator

from django.db import connections, router
from django.db.models import Field
from django.utils import timezone

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
        arrays = []
        for i, field in enumerate(columns):
            plain = _PLAIN_VALUES.get(field.get_internal_type())
            arrays.append([_as_written(field, plain, row[i], connection) for row in rows])
        # In binary where the parameters are bound on the server: the driver packs a binary array
        # in a fraction of the time it spends quoting and escaping each element of a text one.
        mark = "%b" if connection.settings_dict["OPTIONS"].get("server_side_binding") else "%s"
        casts = ", ".join(f"{mark}::{field.cast_db_type(connection)}[]" for field in columns)
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


def _reader(field):
    """What ``save`` would write to ``field`` of an unsaved object: ``pre_save`` where the field
    has one of its own (``auto_now_add``, files), else the attribute as it is."""
    if type(field).pre_save is Field.pre_save:
        return operator.attrgetter(field.attname)
    return lambda obj: field.pre_save(obj, add=True)


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
    readers = [_reader(field) for field in columns]
    for chunk in _chunks(objs, connection):
        source, params = _source(columns, [[read(obj) for read in readers] for obj in chunk], connection)
        sql = f"INSERT INTO {quote(meta.db_table)} ({names}) {source} RETURNING {quote(meta.pk.column)}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            keys = cursor.fetchall()
        # Rows come back in the order they were given, as Django's bulk_create relies on too.
        for obj, (pk,) in zip(chunk, keys, strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, connection.alias
    return objs


# Columns whose values of these Python types PostgreSQL's driver writes as they are: Django's
# preparation would return them unchanged. Everything else (JSON, addresses, naive times) is prepared.
_PLAIN_VALUES = {
    "CharField": str,
    "TextField": str,
    "BooleanField": bool,
    "BigIntegerField": int,
    "IntegerField": int,
    "SmallIntegerField": int,
    "PositiveBigIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveSmallIntegerField": int,
    "ForeignKey": int,
    "DateField": datetime.date,
    "DateTimeField": datetime.datetime,
}


def _as_written(field, plain: type | None, value, connection):
    """``value`` as the driver is to write it: as it is when Django's preparation would not change
    it (a naive time is made aware there, with a warning, so it is prepared)."""
    if value is None or (
        type(value) is plain and (plain is not datetime.datetime or value.tzinfo is not None)
    ):
        return value
    return field.get_db_prep_save(value, connection)


def copy_rows(model, rows) -> list:
    """Insert ``rows`` of ``model`` (one with an auto-incrementing key), each a dict of field
    attribute names (``account_id``) to values; a field left out takes its default, an
    ``auto_now`` or ``auto_now_add`` one the time now. Returns the new rows' primary keys, in
    order. As fast as the database takes them: PostgreSQL's COPY, elsewhere ``insert_rows``.
    Like ``insert_rows``, sends no signals.

    For tens of thousands of rows at once (an import): no model instance per row, no statement to
    parse, no array to build per column."""
    rows = list(rows)
    connection = _connection(model)
    if connection.vendor != "postgresql" or not rows:
        return [obj.pk for obj in insert_rows([model(**row) for row in rows])]
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    plain = [_PLAIN_VALUES.get(field.get_internal_type()) for field in fields]
    now = timezone.now()
    defaults = [
        _as_written(
            field,
            kind,
            now
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            else field.get_default(),
            connection,
        )
        for field, kind in zip(fields, plain, strict=True)
    ]
    columns = ", ".join(quote(field.column) for field in [meta.pk, *fields])
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # The keys are taken from the table's sequence first, so none has to be read back.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [quote(meta.db_table), meta.pk.column, len(rows)],
        )
        keys = [key for (key,) in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for key, row in zip(keys, rows, strict=True):
                copy.write_row(
                    [key]
                    + [
                        _as_written(field, kind, row[field.attname], connection)
                        if field.attname in row
                        else default
                        for field, kind, default in zip(fields, plain, defaults, strict=True)
                    ]
                )
    return keys
