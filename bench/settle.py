"""Settlement throughput, against PostgreSQL's own speed on the same server, in the same run.

    python bench/settle.py --invoices 100000 --processes 2 [--latency-ms 200 --concurrency 64] [--json]

Seeds N due invoices (by default 70% paid by the primary, 20% primary declined and a backup pays, 10%
all declined: 1.3 gateway calls per invoice; ``--mix`` changes it) in a fresh database, runs
``settle_invoices`` in P processes at once, checks that every invoice was settled exactly once against
the sandbox gateway's ledger, and reports invoices/s, gateway calls/s and the peak memory of a settling
process. The run's emails stay queued (``--queue-emails``) for ``send_notifications``, which sends them
outside the run. It then measures pgbench (tpcb-like, P clients, a scratch database of its own) and
prints ratio = invoices_per_s / pgbench_tps. With ``--latency-ms``, it also prints what the gateway
could carry at most: C calls in flight for L ms each. Where the time went, when PostgreSQL runs on this
machine: the CPU time per invoice of the settling processes and of the run's own backends (found by pid,
``common.BackendCPU``: the main database's and the ledger's), beside pgbench's and its own backends' per
pgbench transaction."""

import argparse
import json
import re
import resource
import subprocess
import sys
import time

import psycopg
import sql_limit
from common import (
    PG,
    ROOT,
    BackendCPU,
    drop_database,
    emit,
    fresh_database,
    machine,
    manage,
    project_databases,
)

DB = "bench_settle"
PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('peak_rss_kb', usage.ru_maxrss, 'cpu_s', usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def pgbench(clients: int, seconds: int) -> dict:
    """pgbench's transactions/s, and the CPU time per transaction of pgbench itself and of the
    server."""
    url = fresh_database("bench_pgbench")
    try:
        subprocess.run(
            ["pgbench", "-i", "-q", "-s", str(max(1, clients)), url], check=True, capture_output=True
        )
        client_before = _children_cpu_s()
        with BackendCPU(["bench_pgbench"]) as backends:
            out = subprocess.run(
                [
                    "pgbench",
                    "-b",
                    "tpcb-like",
                    "-c",
                    str(clients),
                    "-j",
                    str(clients),
                    "-T",
                    str(seconds),
                    url,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        client, server = _children_cpu_s() - client_before, backends.seconds()
    finally:
        drop_database("bench_pgbench")
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    transactions = max(1, int(re.search(r"number of transactions actually processed: (\d+)", out).group(1)))
    return {
        "tps": tps,
        "client_cpu_ms_per_tx": round(client * 1000 / transactions, 3),
        "server_cpu_ms_per_tx": None if server is None else round(server * 1000 / transactions, 3),
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def settle(env: dict, processes: int, concurrency: int) -> tuple[float, list[dict], int, float]:
    command = [
        sys.executable,
        "-c",
        PEAK,
        sys.executable,
        str(ROOT / "manage.py"),
        "settle_invoices",
        "--json",
        # Emails are sent outside the run, by send_notifications (see docs/performance.md).
        "--queue-emails",
    ]
    command += ["--concurrency", str(concurrency)]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    results = [proc.communicate() for proc in procs]
    elapsed = time.monotonic() - started
    counts, peaks, cpu = [], [], 0.0
    for proc, (out, err) in zip(procs, results, strict=True):
        if proc.returncode != 0:
            raise SystemExit(f"settle_invoices failed ({proc.returncode}):\n{err[-3000:]}")
        counts.append(json.loads(out))
        usage = re.search(r"peak_rss_kb (\d+) cpu_s ([0-9.]+)", err)
        peaks.append(int(usage.group(1)))
        cpu += float(usage.group(2))
    return elapsed, counts, max(peaks), cpu


def verify(invoices: int) -> dict:
    """Exactly once, from the gateway's own ledger, and nothing left behind."""
    with psycopg.connect(f"{PG}/{DB}") as conn, psycopg.connect(f"{PG}/{DB}_sandbox") as ledger:
        keys = dict(
            conn.execute(
                "SELECT idempotency_key, invoice_id FROM invoices_paymentattempt"
                " WHERE idempotency_key IS NOT NULL"
            )
        )
        charged = {}
        for (key,) in ledger.execute(
            "SELECT idempotency_key FROM sandbox_sandboxcharge WHERE status = 'succeeded'"
        ):
            invoice = keys.get(key)
            if invoice is None:
                raise SystemExit(f"the gateway charged {key}, which no attempt names")
            charged[invoice] = charged.get(invoice, 0) + 1
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM invoices_invoice GROUP BY status").fetchall()
        )
        unresolved = conn.execute(
            "SELECT count(*) FROM invoices_paymentattempt WHERE status IN ('started', 'pending', 'unknown')"
        ).fetchone()[0]
        paid_ids = {row[0] for row in conn.execute("SELECT id FROM invoices_invoice WHERE status = 'paid'")}
    twice = sum(1 for n in charged.values() if n > 1)
    if twice or set(charged) != paid_ids or unresolved or statuses.get("open"):
        raise SystemExit(
            f"NOT settled exactly once: {twice} twice, {unresolved} unresolved, statuses {statuses}"
        )
    with psycopg.connect(f"{PG}/{DB}") as conn:
        calls = conn.execute(
            "SELECT count(*) FROM invoices_paymentattempt WHERE status <> 'skipped'"
        ).fetchone()[0]
        queued = conn.execute(
            "SELECT count(*) FROM notifications_sentemail WHERE status = 'queued'"
        ).fetchone()[0]
    return {
        "exactly_once": True,
        "statuses": statuses,
        "successful_charges": sum(charged.values()),
        "gateway_calls": calls,
        "emails_queued": queued,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="gateway calls in flight per process (default %(default)s: the sandbox's ledger then writes "
        "the charges of calls made at once together, as a processor would)",
    )
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument(
        "--mix",
        default="70,20,10",
        help="percent of invoices paid by the primary, paid by a backup, all declined (default %(default)s)",
    )
    parser.add_argument(
        "--no-limit",
        dest="limit",
        action="store_false",
        help="Skip the SQL limit (the same rows written as plain batched SQL; see sql_limit.py).",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    env = project_databases(DB)
    per_account = 10
    seeded = manage(
        "seed_demo",
        "--force",
        "--accounts",
        str(max(1, args.invoices // per_account)),
        "--invoices-per-account",
        str(per_account),
        "--mix",
        args.mix,
        env=env,
    )
    # Fresh statistics, as a database in service has: a bulk-loaded table has none yet.
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    if args.limit:
        sql_limit.prepare(DB)  # the same starting rows, schema and statistics, for the SQL limit
    env["SANDBOX_LATENCY_MS"] = str(args.latency_ms)
    with BackendCPU([DB, f"{DB}_sandbox"]) as backends:
        elapsed, counts, peak_kb, settle_cpu = settle(env, args.processes, args.concurrency)
    server, server_main, server_ledger = (
        backends.seconds(),
        backends.seconds(DB),
        backends.seconds(f"{DB}_sandbox"),
    )
    totals = {key: sum(c[key] for c in counts) for key in counts[0] if key != "duration_s"}
    checked = verify(args.invoices)
    limit = sql_limit.run(DB, processes=args.processes, batch=400) if args.limit else None
    reference = pgbench(args.processes, args.pgbench_seconds)
    tps = reference["tps"]
    rate = totals["considered"] / elapsed
    invoices = max(1, totals["considered"])
    # Where the time went: CPU per invoice of the settling processes (start-up included) and of
    # the server, beside pgbench's per transaction (in the zero-latency runs, where the ratio is).
    cpu = {
        "settle_ms_per_invoice": round(settle_cpu * 1000 / invoices, 3),
        "server_ms_per_invoice": round(server * 1000 / invoices, 3) if server is not None else None,
        "server_main_ms_per_invoice": round(server_main * 1000 / invoices, 3) if server is not None else None,
        "server_ledger_ms_per_invoice": round(server_ledger * 1000 / invoices, 3)
        if server is not None
        else None,
        "pgbench_client_ms_per_tx": reference["client_cpu_ms_per_tx"],
        "pgbench_server_ms_per_tx": reference["server_cpu_ms_per_tx"],
    }
    calls_per_invoice = checked["gateway_calls"] / max(1, totals["considered"])
    gateway = {"calls": checked["gateway_calls"], "calls_per_invoice": round(calls_per_invoice, 3)}
    gateway["calls_per_s"] = round(checked["gateway_calls"] / elapsed, 1)
    if args.latency_ms:
        # With L ms per call and C calls in flight, the gateway carries at most C / L calls a
        # second; an invoice needs calls_per_invoice of them, one after another.
        in_flight = args.concurrency * args.processes
        gateway["max_calls_per_s"] = round(in_flight / (args.latency_ms / 1000), 1)
        gateway["max_invoices_per_s"] = round(gateway["max_calls_per_s"] / calls_per_invoice, 1)
        gateway["share_of_max"] = round(gateway["calls_per_s"] / gateway["max_calls_per_s"], 3)
    result = {
        "invoices": totals["considered"],
        "processes": args.processes,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 2),
        "invoices_per_s": round(rate, 1),
        "pgbench_tps": round(tps, 1),
        "ratio": round(rate / tps, 3),
        "limit_invoices_per_s": limit["invoices_per_s"] if limit else None,
        "engine_vs_limit": round(rate / limit["invoices_per_s"], 3) if limit else None,
        "sql_limit": limit,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "cpu": cpu,
        "gateway": gateway,
        "counts": totals,
        "verified": checked,
        "seed": seeded.stdout.strip().splitlines()[0] if seeded.stdout.strip() else "",
        "machine": machine(),
    }
    drop_database(DB)
    drop_database(f"{DB}_sandbox")
    emit(
        result,
        as_json=args.json,
        title="settle_invoices benchmark (reference: the SQL limit; pgbench tpcb-like as context)",
    )


if __name__ == "__main__":
    main()
