"""Console speed under load: gunicorn with production-like settings, 16 concurrent clients.

    python bench/console.py [--clients 16] [--seconds 10] [--json] [--load-tool auto|wrk|python]

Starts gunicorn on 127.0.0.1 (the project's gunicorn.conf.py) against a fresh PostgreSQL database
with benchmark data, signs in as a customer through the real form, and drives the dashboard, the
payment methods page, the invoice list and the charge-order API, next to the trivial /healthz
endpoint of the same server as the reference. Every request carries the signed-in session, the
health endpoint's included. Reports requests/s, p50 and p95 for each, each page's p95 as a multiple
of the health endpoint's and its requests/s as a fraction of the health endpoint's, whether each
page meets the targets (p95 at most 2.5 times the health endpoint's, requests/s at least 0.3 of its, in
the same run), and the gunicorn workers' CPU time per request (which, unlike the others, hardly
changes when other work shares the machine).

The load comes from wrk when it is installed (Debian: apt-get install wrk), else from a Python
load generator, whose threads compete with the server for the same cores; the output says which.
"""

import argparse
import http.client
import http.cookies
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from common import ROOT, drop_database, emit, machine, manage, project_databases

DB = "bench_console"
PAGES = {
    "health (reference)": "/healthz",
    "dashboard": "/",
    "payment methods": "/payment-methods/",
    "invoice list": "/invoices/",
    "charge-order API": "/api/charge-order/",
}
ACCEPT = "text/html,application/json"
REFERENCE = "health (reference)"
# Targets, against the health endpoint in the same run: a page's p95 at most this many times its p95,
TARGET_P95_VS_HEALTH = 2.5
# and its requests/s at least this fraction of its requests/s.
TARGET_RPS_VS_HEALTH = 0.3
# The shared cache a production deployment uses (README), when a Redis server is running here.
REDIS = ("127.0.0.1", 6379)
REDIS_CACHE_URL = "redis://127.0.0.1:6379/15"

# wrk reports its own percentiles; p95 and the answers that were not 200 come from this script.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local not_ok_total = 0
  for _, thread in ipairs(threads) do not_ok_total = not_ok_total + thread:get("not_ok") end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"not_ok": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), not_ok_total, e.connect + e.read + e.write + e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(port: int, username: str, password: str) -> str:
    """Sign in through the real form; returns the Cookie header for the session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/sign-in/")
    response = conn.getresponse()
    page = response.read().decode()
    jar = http.cookies.SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
    cookie = "; ".join(f"{k}={v.value}" for k, v in jar.items())
    conn.request(
        "POST",
        "/sign-in/",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    response = conn.getresponse()
    response.read()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    if response.status != 302 or "sessionid" not in jar:
        raise SystemExit(f"sign-in failed: HTTP {response.status}")
    return "; ".join(f"{k}={v.value}" for k, v in jar.items())


def check_page(port: int, path: str, cookie: str) -> None:
    """Each page must answer 200 to the signed-in session (a redirect to sign-in would look fast)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Cookie": cookie, "Accept": ACCEPT})
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit(f"{path} answered HTTP {response.status}, not 200")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the process name: state, ppid, … utime (11), stime (12)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def worker_cpu_ticks(arbiter: int) -> dict[int, int]:
    """CPU ticks (user + system, all threads) used so far by each of gunicorn's worker processes:
    the processes gunicorn's arbiter ``arbiter`` forked (children running gunicorn itself), not the
    arbiter, the load generator, PostgreSQL or anything else on the machine."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fields = _stat_fields(pid)
            if int(fields[1]) != arbiter:
                continue
            if b"gunicorn" not in (entry / "cmdline").read_bytes():
                continue
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def worker_cpu_seconds(before: dict[int, int], after: dict[int, int]) -> tuple[float, bool]:
    """The workers' CPU seconds between two ``worker_cpu_ticks`` readings, and whether the same
    workers ran throughout (a worker that gunicorn replaced meanwhile took its time with it)."""
    used = sum(ticks - before.get(pid, 0) for pid, ticks in after.items())
    return used / os.sysconf("SC_CLK_TCK"), set(before) == set(after)


def redis_running() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wrk_version(wrk: str) -> str:
    # wrk prints its version in the usage text, on standard output or error depending on the build.
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    text = (result.stdout + result.stderr).strip()
    return text.splitlines()[0] if text else "wrk"


def load_wrk(wrk: str, script: Path, port: int, path: str, cookie: str, clients: int, seconds: float) -> dict:
    command = [
        wrk,
        "--threads",
        "1",  # one event loop drives every connection; the server keeps the rest of the machine
        "--connections",
        str(clients),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--script",
        str(script),
        "--header",
        f"Cookie: {cookie}",
        "--header",
        f"Accept: {ACCEPT}",
        f"http://127.0.0.1:{port}{path}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next((line for line in output.splitlines() if line.startswith("WRK_RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result for {path}:\n{output}")
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    return {
        "requests": raw["requests"],
        "errors": raw["not_ok"] + raw["socket_errors"],
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p95_ms": round(raw["p95_us"] / 1000, 1),
    }


def load_python(port: int, path: str, cookie: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie, "Accept": ACCEPT})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                failed += 1
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(quantiles[49] * 1000, 1),
        "p95_ms": round(quantiles[94] * 1000, 1),
    }


def gunicorn_config(env: dict, **overrides) -> dict:
    """The worker settings the server runs with: gunicorn.conf.py's, then the command line's."""
    script = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('worker_class', 'workers', 'threads', 'timeout') if k in c}))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    config = json.loads(result.stdout) if result.returncode == 0 else {}
    config.update({key: value for key, value in overrides.items() if value})
    return config


def print_table(results: dict, *, tool: str, clients: int, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Console under load: {clients} clients, {seconds:g} s per page, load from {tool}")
    columns = (
        "page",
        "requests/s",
        "p50 ms",
        "p95 ms",
        f"p95 ÷ health (≤ {TARGET_P95_VS_HEALTH:g})",
        f"req/s ÷ health (≥ {TARGET_RPS_VS_HEALTH:g})",
        "targets",
        "errors",
        "worker CPU ms/request",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "page" else "right")
    for name, result in results.items():
        verdict = "—" if name == REFERENCE else ("met" if result["meets_targets"] else "NOT met")
        table.add_row(
            name,
            f"{result['requests_per_s']:.1f}",
            f"{result['p50_ms']:.1f}",
            f"{result['p95_ms']:.1f}",
            f"{result['p95_vs_health']:.2f}",
            f"{result['rps_vs_health']:.2f}",
            verdict,
            str(result["errors"]),
            f"{result['worker_cpu_ms_per_request']:.2f}" + ("" if result["same_workers"] else " *"),
        )
    Console(width=160).print(table)
    if not all(result["same_workers"] for result in results.values()):
        print("* gunicorn replaced a worker during the measurement: its CPU time before then is missing.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per page")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per page first")
    parser.add_argument(
        "--load-tool",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto: wrk when installed, else the Python load generator",
    )
    parser.add_argument("--workers", type=int, help="override gunicorn.conf.py's worker processes")
    parser.add_argument("--threads", type=int, help="override gunicorn.conf.py's threads per worker")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    wrk = shutil.which("wrk") if args.load_tool in ("auto", "wrk") else None
    if args.load_tool == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    tool = wrk_version(wrk) if wrk else "Python load generator (threads on the same cores)"
    if not wrk and not args.json:
        print("wrk not found: using the Python load generator, which shares the cores with the server.")

    load_at_start = os.getloadavg()
    env = project_databases(DB)
    if redis_running():
        env["CACHE_URL"] = REDIS_CACHE_URL
    manage("seed_demo", "--force", "--accounts", "20", "--invoices-per-account", "60", env=env)
    manage("collectstatic", "--noinput", "-v0", env=env)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "billing_console.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning"]
    if args.workers:
        command += ["--workers", str(args.workers)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    script = None
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        cookie = sign_in(port, "bench000001", "demo")
        if wrk:
            script = Path(tempfile.mkstemp(suffix=".lua", prefix="bench-console-")[1])
            script.write_text(WRK_SCRIPT)

        def run(path: str, seconds: float) -> dict:
            if wrk:
                return load_wrk(wrk, script, port, path, cookie, args.clients, seconds)
            return load_python(port, path, cookie, args.clients, seconds)

        results = {}
        for name, path in PAGES.items():
            check_page(port, path, cookie)
            if args.warmup > 0:
                run(path, args.warmup)
            ticks_before = worker_cpu_ticks(server.pid)
            results[name] = run(path, args.seconds)
            # CPU per request in the workers, which other work on the machine hardly changes.
            cpu, same_workers = worker_cpu_seconds(ticks_before, worker_cpu_ticks(server.pid))
            results[name]["worker_cpu_ms_per_request"] = round(
                1000 * cpu / max(1, results[name]["requests"]), 2
            )
            results[name]["same_workers"] = same_workers
            check_page(port, path, cookie)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if script is not None:
            script.unlink(missing_ok=True)
        drop_database(DB)
        drop_database(f"{DB}_sandbox")
    health = results[REFERENCE]
    for name, result in results.items():
        result["p95_vs_health"] = round(result["p95_ms"] / max(health["p95_ms"], 0.1), 2)
        result["rps_vs_health"] = round(result["requests_per_s"] / max(health["requests_per_s"], 0.1), 2)
        if name != REFERENCE:
            # Against the unrounded figures.
            result["meets_p95_target"] = result["p95_ms"] <= TARGET_P95_VS_HEALTH * health["p95_ms"]
            result["meets_rps_target"] = (
                result["requests_per_s"] >= TARGET_RPS_VS_HEALTH * health["requests_per_s"]
            )
            result["meets_targets"] = (
                result["meets_p95_target"] and result["meets_rps_target"] and result["errors"] == 0
            )
    settings_used = {
        key: env[key]
        for key in (
            "DEBUG",
            "ALLOWED_HOSTS",
            "SECURE_SSL_REDIRECT",
            "SECURE_COOKIES",
            "SECURE_HSTS_SECONDS",
            "EMAIL_URL",
            "LOG_LEVEL",
            "CACHE_URL",
        )
        if key in env
    }
    settings_used["DATABASE_CONN_MAX_AGE"] = env.get("DATABASE_CONN_MAX_AGE", "default (60)")
    summary = {
        "clients": args.clients,
        "seconds_per_page": args.seconds,
        "warmup_seconds_per_page": args.warmup,
        "load_tool": tool,
        "targets": {
            "p95_vs_health_at_most": TARGET_P95_VS_HEALTH,
            "requests_per_s_vs_health_at_least": TARGET_RPS_VS_HEALTH,
        },
        "all_targets_met": all(r.get("meets_targets", True) for r in results.values()),
        "pages": results,
        "server": {
            "gunicorn": gunicorn_config(env, workers=args.workers, threads=args.threads),
            "settings": settings_used,
        },
        "machine": {
            **machine(),
            "load_average_at_start": load_at_start,
            "gunicorn": _version("gunicorn"),
            "wrk": wrk_version(wrk) if wrk else None,
        },
    }
    if args.json:
        emit(summary, as_json=True, title="")
        return
    print_table(results, tool=tool, clients=args.clients, seconds=args.seconds)
    emit(
        {key: value for key, value in summary.items() if key != "pages"},
        as_json=False,
        title="Run",
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
