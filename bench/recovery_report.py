"""The recovery report over a million invoices: how long it takes, and how many queries.

    python bench/recovery_report.py [--invoices 1000000] [--repeat 5] [--keep] [--json]

Fills fresh PostgreSQL databases (``bench_recovery``) with invoices of 1,000 accounts due over two
years, settled the way the engine leaves them — 70% paid by the primary, 15% by backup 1, 5% by
backup 2, 5% past due, 3% uncollectible, 1% open, 1% voided — with their attempts and decline codes,
written by SQL (generate_series) rather than by settling them, which would take the whole bench.
Then it asks the report (``invoices.recovery.recovery_report``) for the busiest currency over the
whole two years and over the last 90 days, and the admin page for the same, ``--repeat`` times each,
and prints the best and median times and the number of queries. The target: under 1 s.
"""

import argparse
import os
import statistics
import sys
import time

from common import ROOT, drop_database, emit, machine, manage, project_databases

NAME = "bench_recovery"
ACCOUNTS = 1000
METHODS_PER_ACCOUNT = 3
FIRST_DUE = "2025-01-01"
DAYS = 730
TARGET_S = 1.0


def seed_sql(invoices: int) -> str:
    """Outcomes by invoice id % 100, each with its attempts and the place that paid it."""
    return f"""
CREATE TEMPORARY TABLE plan AS
SELECT i AS id,
       (i % {ACCOUNTS}) + 1 AS account_id,
       CASE WHEN (i % {ACCOUNTS}) % 10 = 0 THEN 'EUR' ELSE 'USD' END AS currency,
       1000 + (i * 7919) % 50000 AS amount_minor,
       DATE '{FIRST_DUE}' + (i % {DAYS})::int AS due_on,
       CASE WHEN i % 100 < 70 THEN 'paid1' WHEN i % 100 < 85 THEN 'paid2' WHEN i % 100 < 90 THEN 'paid3'
            WHEN i % 100 < 95 THEN 'past_due' WHEN i % 100 < 98 THEN 'uncollectible'
            WHEN i % 100 < 99 THEN 'open' ELSE 'void' END AS outcome
FROM generate_series(1::bigint, {invoices}) AS i;

INSERT INTO accounts_account (id, name, billing_email, billing_recipients, status, currency, created_at)
SELECT a, 'Bench customer ' || a, 'billing' || a || '@bench.example', '[]', 'active',
       CASE WHEN (a - 1) % 10 = 0 THEN 'EUR' ELSE 'USD' END, now()
FROM generate_series(1, {ACCOUNTS}) AS a;

INSERT INTO payments_paymentmethod (id, kind, gateway, token, fingerprint, brand, last4, exp_month,
    exp_year, bank_name, status, blocked_reason, created_at, updated_at, account_id)
SELECT (a - 1) * {METHODS_PER_ACCOUNT} + k, 'card', 'sandbox', 'tok_bench_' || a || '_' || k, '', 'Visa',
       '4242', 12, 2040, '', 'active', '', now(), now(), a
FROM generate_series(1, {ACCOUNTS}) AS a, generate_series(1, {METHODS_PER_ACCOUNT}) AS k;

INSERT INTO invoices_invoice (id, number, currency, amount_minor, description, issued_on, due_on, status,
    retry_round, lease_token, lease_owner, paid_at, paid_by_backup, paid_by_position, paid_by_attempt_id,
    paid_by_method_id, voided_at, created_at, updated_at, account_id)
SELECT id, 'BENCH-' || id, currency, amount_minor, '', due_on - 14, due_on,
       CASE WHEN outcome LIKE 'paid%' THEN 'paid' ELSE outcome END,
       0, '', '',
       CASE WHEN outcome LIKE 'paid%' THEN due_on + TIME '09:00' + (id % 3) * INTERVAL '1 day' END,
       outcome IN ('paid2', 'paid3'),
       CASE WHEN outcome LIKE 'paid%' THEN right(outcome, 1)::int END,
       CASE WHEN outcome LIKE 'paid%' THEN id * 3 + right(outcome, 1)::int - 1 END,
       CASE WHEN outcome LIKE 'paid%'
            THEN (account_id - 1) * {METHODS_PER_ACCOUNT} + right(outcome, 1)::int END,
       CASE WHEN outcome = 'void' THEN due_on + TIME '12:00' END,
       now(), now(), account_id
FROM plan;

INSERT INTO invoices_paymentattempt (id, sequence, position, retry_round, amount_minor, currency, status,
    idempotency_key, gateway_reference, decline_code, decline_class, skip_reason, message, trigger,
    created_at, completed_at, invoice_id, method_id)
SELECT p.id * 3 + s - 1, s, s, 0, p.amount_minor, p.currency,
       CASE WHEN p.outcome LIKE 'paid%' AND s = right(p.outcome, 1)::int THEN 'succeeded' ELSE 'failed' END,
       'bench-' || p.id || '-' || s, '',
       CASE WHEN p.outcome LIKE 'paid%' AND s = right(p.outcome, 1)::int THEN ''
            ELSE (ARRAY['generic_decline', 'insufficient_funds', 'lost_card', 'expired_card', 'do_not_honor'])
                 [1 + (p.id + s) % 5] END,
       '', '', '', 'schedule',
       p.due_on + TIME '09:00', p.due_on + TIME '09:00', p.id,
       (p.account_id - 1) * {METHODS_PER_ACCOUNT} + s
FROM plan AS p,
     generate_series(1, CASE WHEN p.outcome LIKE 'paid%' THEN right(p.outcome, 1)::int
                             WHEN p.outcome IN ('past_due', 'uncollectible') THEN 1 ELSE 0 END) AS s;

SELECT setval(pg_get_serial_sequence('accounts_account', 'id'), {ACCOUNTS});
SELECT setval(pg_get_serial_sequence('payments_paymentmethod', 'id'), {ACCOUNTS * METHODS_PER_ACCOUNT});
SELECT setval(pg_get_serial_sequence('invoices_invoice', 'id'), {invoices});
SELECT setval(pg_get_serial_sequence('invoices_paymentattempt', 'id'), {invoices} * 3 + 3);
"""


def seed(database_url: str, invoices: int) -> float:
    import psycopg

    started = time.monotonic()
    with psycopg.connect(database_url) as conn:
        # Django's foreign keys are deferred: invoices may name the attempts that follow them.
        conn.execute(seed_sql(invoices))
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def timed(function, repeat: int) -> dict:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    seconds, queries = [], 0
    for _ in range(repeat):
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - started)
        queries = len(captured)
    return {
        "best_s": round(min(seconds), 3),
        "median_s": round(statistics.median(seconds), 3),
        "queries": queries,
        "under_target": max(seconds) < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    env = project_databases(NAME)
    manage("collectstatic", "--noinput", "-v0", env=env)  # the admin page's stylesheets, as served
    seeded_s = seed(env["DATABASE_URL"], args.invoices)

    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_console.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import datetime

    from django.contrib.auth import get_user_model
    from django.test import Client

    from invoices.recovery import recovery_report

    last = datetime.date.fromisoformat(FIRST_DUE) + datetime.timedelta(days=DAYS - 1)
    periods = {
        "two_years": (datetime.date.fromisoformat(FIRST_DUE), last),
        "90_days": (last - datetime.timedelta(days=89), last),
    }
    admin = get_user_model().objects.create_superuser("bench-admin", "admin@bench.example", "bench")
    client = Client()
    client.force_login(admin)

    result = {"invoices": args.invoices, "seeded_s": round(seeded_s, 1), "target_s": TARGET_S}
    for name, (start, end) in periods.items():
        question = {"currency": "USD", "start": start, "end": end}
        report = recovery_report(**question, as_of=last)
        page = {key: str(value) for key, value in question.items()}
        result[name] = {
            "invoices_due": report.due.count,
            "recovered_minor": report.recovered.amount_minor,
            "report": timed(lambda q=question: recovery_report(**q, as_of=last), args.repeat),
            "admin_page": timed(
                lambda p=page: client.get(
                    "/admin/invoices/invoice/recovery/", p, headers={"host": "127.0.0.1"}
                ),
                args.repeat,
            ),
        }
    result["machine"] = machine()
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(NAME)
        drop_database(f"{NAME}_sandbox")
    emit(result, as_json=args.json, title="Recovery report")


if __name__ == "__main__":
    main()
