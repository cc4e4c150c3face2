"""Invoice import speed: a 100,000-line CSV file and a JSON-lines one through ``import_invoices``.

    DATABASE_URL=postgres://… python bench/import_invoices.py [--rows 100000] [--accounts 100] [--json]

Runs on the configured database (``DATABASE_URL``, migrated here if it is not yet; PostgreSQL is the
target: a clean 100,000-line file must import in under 30 s). It creates its own accounts, writes
both files with numbers no earlier run used, times ``manage.py import_invoices`` on each as an
operator runs it (start-up included), then the CSV file again (every invoice already present: the
idempotent re-run), and prints the figures. What it created is deleted afterwards, unless ``--keep``.
"""

import argparse
import csv
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import ROOT, emit

TARGET_S = 30
CURRENCIES = [("USD", 100, 2_000_000), ("EUR", 100, 2_000_000), ("JPY", 1, 200_000), ("KWD", 1000, 500_000)]
FIELDS = ["account_id", "number", "currency", "amount_minor", "issued_on", "due_on", "description"]


def environment() -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_console.settings",
        "DEBUG": os.environ.get("DEBUG", "0"),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret-key-0123456789abcdefghijklmnop"),
        "EMAIL_URL": os.environ.get("EMAIL_URL", "dummymail://"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }
    os.environ.update(env)
    return env


def records(account_ids: list[int], *, rows: int, prefix: str):
    rng = random.Random(prefix)
    issued = datetime.date.today()
    for n in range(rows):
        currency, _minor, top = CURRENCIES[n % len(CURRENCIES)]
        yield {
            "account_id": account_ids[n % len(account_ids)],
            "number": f"{prefix}-{n:07d}",
            "currency": currency,
            "amount_minor": rng.randint(1, top),
            "issued_on": issued.isoformat(),
            "due_on": (issued + datetime.timedelta(days=rng.randint(0, 30))).isoformat(),
            "description": f"Usage {issued:%B %Y}, line {n}",
        }


def write_csv(path: Path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def timed_import(path: Path, env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "import_invoices", str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"import_invoices {path.name} failed:\n{result.stderr[-2000:]}")
    return elapsed, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the accounts and invoices it created")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    env = environment()
    sys.path.insert(0, str(ROOT))
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    import django

    django.setup()
    from django.db import connection

    from accounts.models import Account, AuditEvent
    from invoices.models import Invoice

    run = uuid.uuid4().hex[:8]
    accounts = Account.objects.bulk_create(
        Account(name=f"Import bench {run} {n:04d}", billing_email=f"import-bench-{run}-{n}@example.com")
        for n in range(args.accounts)
    )
    account_ids = [account.pk for account in accounts]
    connection.close()  # the imports run in processes of their own
    # The machine's load beside the figures: other work on the same cores slows every one of them.
    result = {
        "database": connection.vendor,
        "rows": args.rows,
        "target_s": TARGET_S,
        "load_average": os.getloadavg(),
    }
    try:
        with tempfile.TemporaryDirectory() as scratch:
            csv_path, jsonl_path = Path(scratch) / "invoices.csv", Path(scratch) / "invoices.jsonl"
            write_csv(csv_path, records(account_ids, rows=args.rows, prefix=f"BC{run}"))
            write_jsonl(jsonl_path, records(account_ids, rows=args.rows, prefix=f"BJ{run}"))
            for name, path in (("csv", csv_path), ("jsonl", jsonl_path), ("csv_again", csv_path)):
                elapsed, said = timed_import(path, env)
                result[name] = {
                    "seconds": round(elapsed, 2),
                    "rows_per_s": round(args.rows / elapsed),
                    "said": said,
                }
        result["within_target"] = all(result[name]["seconds"] < TARGET_S for name in ("csv", "jsonl"))
    finally:
        if not args.keep:
            AuditEvent.objects.filter(account_id__in=account_ids).delete()
            Invoice.objects.filter(account_id__in=account_ids).delete()
            Account.objects.filter(pk__in=account_ids).delete()
    emit(result, as_json=args.json, title=f"import_invoices, {args.rows:,} lines ({result['database']})")


if __name__ == "__main__":
    main()
