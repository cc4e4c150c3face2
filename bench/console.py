"""Console speed under load: gunicorn with production-like settings, 16 concurrent clients.

    python bench/console.py [--clients 16] [--seconds 10] [--json]

Starts gunicorn on 127.0.0.1 against a fresh PostgreSQL database with benchmark data, signs in as
a customer, and drives the dashboard, the payment methods page, the invoice list and the charge-order
API, next to the trivial /healthz endpoint of the same server as the reference. Reports requests/s,
p50 and p95 for each, and each page's requests/s as a fraction of the health endpoint's.
"""

import argparse
import http.client
import http.cookies
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

from common import ROOT, drop_database, emit, machine, manage, project_databases

DB = "bench_console"
PAGES = {
    "health (reference)": "/healthz",
    "dashboard": "/",
    "payment methods": "/payment-methods/",
    "invoice list": "/invoices/",
    "charge-order API": "/api/charge-order/",
}


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


def load(port: int, path: str, cookie: str, clients: int, seconds: float) -> dict:
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
            conn.request("GET", path, headers={"Cookie": cookie, "Accept": "text/html,application/json"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                failed += 1
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    env = project_databases(DB)
    manage("seed_demo", "--force", "--accounts", "20", "--invoices-per-account", "60", env=env)
    manage("collectstatic", "--noinput", "-v0", env=env)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "billing_console.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        cookie = sign_in(port, "bench000001", "demo")
        results = {name: load(port, path, cookie, args.clients, args.seconds) for name, path in PAGES.items()}
    finally:
        server.terminate()
        server.wait(timeout=30)
        drop_database(DB)
        drop_database(f"{DB}_sandbox")
    reference = results["health (reference)"]["requests_per_s"]
    for result in results.values():
        result["vs_health"] = round(result["requests_per_s"] / reference, 2)
    emit(
        {
            "clients": args.clients,
            "seconds": args.seconds,
            "workers": args.workers,
            "pages": results,
            "machine": machine(),
        },
        as_json=args.json,
        title="Console under load (reference: /healthz on the same server)",
    )


if __name__ == "__main__":
    main()
