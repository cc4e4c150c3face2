"""The SQL limit: what PostgreSQL itself does for the rows a settlement run writes.

``bench/settle.py`` copies its seeded databases before the engine runs (``prepare``); after the run,
``run`` writes into the copies exactly the rows the engine wrote (its attempts, their outcomes, the
invoices' final states, the audit log, the email outbox and the gateway's ledger), read back from
the engine's databases, as plain SQL: prepared statements (psycopg binds on the server and sends
each batch in one pipeline), one batch of invoices at a time, in the shape of the engine's work:

1. claim the batch's invoices (``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``);
2. insert its attempts as started (skips as they are), and commit, as the engine does before a call;
3. write the ledger's charges, on the ledger's own connection;
4. record the outcomes, write the invoices' final states, the audit rows and the outbox rows, commit.

With P processes in the engine's run, P workers (threads, each with its own two connections) take
batches from one queue. The copies end with the same rows as the engine's databases (checked), and
are dropped. The settlement runs' own rows (one per run, which the attempts name) are copied first,
outside the measurement.
"""

import queue
import threading
import time

import psycopg
from common import PG, BackendCPU, admin_sql, drop_database
from psycopg.types.json import Jsonb

TABLES = ("invoices_paymentattempt", "accounts_auditevent", "notifications_sentemail")
LEDGER = "sandbox_sandboxcharge"
INVOICE_STATE = (
    "status",
    "next_attempt_at",
    "first_failed_at",
    "retry_round",
    "lease_token",
    "lease_owner",
    "lease_expires_at",
    "paid_at",
    "paid_by_attempt_id",
    "paid_by_method_id",
    "paid_by_backup",
    "paid_by_position",
    "updated_at",
)
# An attempt as it is committed before its call: the outcome's columns not yet known.
OUTCOME = ("status", "gateway_reference", "decline_code", "decline_class", "message", "completed_at")


def prepare(source: str) -> None:
    """Copy the seeded databases (nobody may be connected to them)."""
    for suffix in ("", "_sandbox"):
        admin_sql(
            f'DROP DATABASE IF EXISTS "{source}_limit{suffix}" WITH (FORCE)',
            f'CREATE DATABASE "{source}_limit{suffix}" TEMPLATE "{source}{suffix}"',
        )


def drop(source: str) -> None:
    drop_database(f"{source}_limit")
    drop_database(f"{source}_limit_sandbox")


def _columns(conn, table: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            [table],
        )
    ]


def _max_id(conn, table: str) -> int:
    return conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]


def _adapt(row) -> tuple:
    return tuple(Jsonb(value) if isinstance(value, dict | list) else value for value in row)


def _rows_after(conn, table: str, after: int, columns: list[str]) -> list[tuple]:
    names = ", ".join(columns)
    return [
        _adapt(row) for row in conn.execute(f"SELECT {names} FROM {table} WHERE id > %s ORDER BY id", [after])
    ]


def _read(source: str, target: str) -> dict:
    """What the engine wrote, from its databases, beyond what the copies hold."""
    with psycopg.connect(f"{PG}/{target}") as copy, psycopg.connect(f"{PG}/{target}_sandbox") as copy_ledger:
        before = {table: _max_id(copy, table) for table in TABLES}
        before[LEDGER] = _max_id(copy_ledger, LEDGER)
    with psycopg.connect(f"{PG}/{source}") as conn, psycopg.connect(f"{PG}/{source}_sandbox") as ledger:
        columns = {table: _columns(conn, table) for table in TABLES}
        columns[LEDGER] = _columns(ledger, LEDGER)
        rows = {table: _rows_after(conn, table, before[table], columns[table]) for table in TABLES}
        rows[LEDGER] = _rows_after(ledger, LEDGER, before[LEDGER], columns[LEDGER])
        invoices = conn.execute(
            f"SELECT id, {', '.join(INVOICE_STATE)} FROM invoices_invoice WHERE id IN "
            "(SELECT DISTINCT invoice_id FROM invoices_paymentattempt) ORDER BY id"
        ).fetchall()
    return {"columns": columns, "rows": rows, "invoices": invoices}


def _batches(work: dict, size: int) -> list[dict]:
    """The invoices in batches of ``size``, each with its attempts and ledger rows; the audit and
    outbox rows (by account, not by invoice) are shared out evenly."""
    attempt_columns = work["columns"]["invoices_paymentattempt"]
    invoice_at, key_at = attempt_columns.index("invoice_id"), attempt_columns.index("idempotency_key")
    by_invoice: dict[int, list] = {}
    for row in work["rows"]["invoices_paymentattempt"]:
        by_invoice.setdefault(row[invoice_at], []).append(row)
    ledger_columns = work["columns"][LEDGER]
    ledger_key_at = ledger_columns.index("idempotency_key")
    ledger_by_key = {row[ledger_key_at]: row for row in work["rows"][LEDGER]}
    invoices = work["invoices"]
    batches = []
    for start in range(0, len(invoices), size):
        chunk = invoices[start : start + size]
        attempts = [row for invoice in chunk for row in by_invoice.get(invoice[0], [])]
        charges = [ledger_by_key[row[key_at]] for row in attempts if row[key_at] in ledger_by_key]
        batches.append({"invoices": chunk, "attempts": attempts, "charges": charges})
    for table in ("accounts_auditevent", "notifications_sentemail"):
        rows = work["rows"][table]
        for i, batch in enumerate(batches):
            batch[table] = rows[i * len(rows) // len(batches) : (i + 1) * len(rows) // len(batches)]
    return batches


def _insert(conn, table: str, columns: list[str], rows: list[tuple]) -> None:
    if rows:
        marks = ", ".join(["%s"] * len(columns))
        with conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _worker(tasks: queue.SimpleQueue, columns: dict, target: str, errors: list) -> None:
    attempt_columns = columns["invoices_paymentattempt"]
    outcome_at = [attempt_columns.index(name) for name in OUTCOME]
    id_at = attempt_columns.index("id")
    started_at = attempt_columns.index("status")
    try:
        with (
            psycopg.connect(f"{PG}/{target}", prepare_threshold=0) as conn,
            psycopg.connect(f"{PG}/{target}_sandbox", prepare_threshold=0, autocommit=True) as ledger,
        ):
            while (batch := tasks.get()) is not None:
                ids = [invoice[0] for invoice in batch["invoices"]]
                with conn.transaction():
                    conn.execute(
                        "UPDATE invoices_invoice SET lease_token = 'limit', lease_owner = 'limit', "
                        "lease_expires_at = now() + interval '20 seconds' "
                        "FROM (SELECT id FROM invoices_invoice WHERE id = ANY(%s) "
                        "ORDER BY id FOR UPDATE SKIP LOCKED) AS due (due_id) "
                        "WHERE invoices_invoice.id = due.due_id RETURNING invoices_invoice.id",
                        [ids],
                    ).fetchall()
                started = []
                for row in batch["attempts"]:
                    if row[started_at] == "skipped":
                        started.append(row)
                        continue
                    row = list(row)
                    row[started_at] = "started"
                    for i in outcome_at[1:]:
                        row[i] = None if attempt_columns[i] == "completed_at" else ""
                    started.append(tuple(row))
                with conn.transaction():
                    _insert(conn, "invoices_paymentattempt", attempt_columns, started)
                with ledger.transaction():
                    _insert(ledger, LEDGER, columns[LEDGER], batch["charges"])
                with conn.transaction(), conn.cursor() as cursor:
                    outcomes = [
                        (*(row[i] for i in outcome_at), row[id_at])
                        for row in batch["attempts"]
                        if row[started_at] != "skipped"
                    ]
                    if outcomes:
                        sets = ", ".join(f"{name} = %s" for name in OUTCOME)
                        cursor.executemany(
                            f"UPDATE invoices_paymentattempt SET {sets} WHERE id = %s",
                            outcomes,
                        )
                    sets = ", ".join(f"{name} = %s" for name in INVOICE_STATE)
                    cursor.executemany(
                        f"UPDATE invoices_invoice SET {sets} WHERE id = %s",
                        [(*invoice[1:], invoice[0]) for invoice in batch["invoices"]],
                    )
                    for table in ("accounts_auditevent", "notifications_sentemail"):
                        _insert(conn, table, columns[table], batch[table])
    except Exception as exc:  # reported by run()
        errors.append(exc)


def _counts(database: str) -> dict:
    with psycopg.connect(f"{PG}/{database}") as conn, psycopg.connect(f"{PG}/{database}_sandbox") as ledger:
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
        counts[LEDGER] = ledger.execute(f"SELECT count(*) FROM {LEDGER}").fetchone()[0]
        counts["invoice_statuses"] = dict(
            conn.execute(
                "SELECT status, count(*) FROM invoices_invoice GROUP BY status ORDER BY status"
            ).fetchall()
        )
    return counts


def run(source: str, *, processes: int, batch: int) -> dict:
    """Replay the engine's rows into the copies made by ``prepare``; the figures, then drop them."""
    target = f"{source}_limit"
    try:
        with psycopg.connect(f"{PG}/{source}") as conn, psycopg.connect(f"{PG}/{target}") as copy:
            columns = _columns(conn, "invoices_settlementrun")
            runs = _rows_after(
                conn, "invoices_settlementrun", _max_id(copy, "invoices_settlementrun"), columns
            )
            _insert(copy, "invoices_settlementrun", columns, runs)
        work = _read(source, target)
        batches = _batches(work, batch)
        tasks: queue.SimpleQueue = queue.SimpleQueue()
        for each in batches:
            tasks.put(each)
        errors: list = []
        workers = [
            threading.Thread(target=_worker, args=(tasks, work["columns"], target, errors))
            for _ in range(processes)
        ]
        for _ in workers:
            tasks.put(None)
        client_before = time.process_time()
        started = time.monotonic()
        with BackendCPU([target, f"{target}_sandbox"]) as backends:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        elapsed = time.monotonic() - started
        client = time.process_time() - client_before
        if errors:
            raise SystemExit(f"the SQL limit failed: {errors[0]!r}")
        same = _counts(source) == _counts(target)
        invoices = max(1, len(work["invoices"]))
        server = backends.seconds()
        return {
            "invoices": len(work["invoices"]),
            "seconds": round(elapsed, 2),
            "invoices_per_s": round(len(work["invoices"]) / elapsed, 1),
            "client_ms_per_invoice": round(client * 1000 / invoices, 3),
            "server_ms_per_invoice": None if server is None else round(server * 1000 / invoices, 3),
            "server_main_ms_per_invoice": None
            if server is None
            else round(backends.seconds(target) * 1000 / invoices, 3),
            "server_ledger_ms_per_invoice": None
            if server is None
            else round(backends.seconds(f"{target}_sandbox") * 1000 / invoices, 3),
            "batch": batch,
            "workers": processes,
            "same_rows_as_the_engine": same,
        }
    finally:
        drop(source)
