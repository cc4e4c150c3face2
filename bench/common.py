"""Shared pieces of the benchmarks: fresh PostgreSQL databases, the machine's description, output."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def admin_sql(*statements: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def fresh_database(name: str) -> str:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def drop_database(name: str) -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def project_env(database: str, **extra) -> dict:
    """Production-like settings on the benchmark's own databases."""
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{database}",
        "SANDBOX_DATABASE_URL": f"{PG}/{database}_sandbox",
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "SECURE_HSTS_SECONDS": "0",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
    )


def project_databases(name: str) -> dict:
    fresh_database(name)
    fresh_database(f"{name}_sandbox")
    env = project_env(name)
    manage("migrate", "--noinput", env=env)
    manage("migrate", "--noinput", "--database", "sandbox", env=env)
    return env


class BackendCPU:
    """CPU time of the server's backends that serve ``databases`` (and only those: other work on a
    shared server is not counted), while it runs as a context manager.

    A thread reads pg_stat_activity every ``interval`` seconds, and each backend's own CPU time from
    /proc/<pid>/stat; a backend that existed before counts from its first reading. A backend's
    last ``interval`` before it exits is missed, which is the error bound. ``seconds`` is None when
    the server is not on this machine."""

    def __init__(self, databases, interval: float = 0.1):
        import threading

        self.databases, self.interval = list(databases), interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.by_database: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")
        self.available = True

    def __enter__(self) -> "BackendCPU":
        self._read(initial=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self._read()

    def _read(self, *, initial: bool = False) -> None:
        try:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY(%s)", [self.databases]
                ).fetchall()
        except psycopg.Error:
            self.available = False
            return
        for pid, datname in rows:
            try:
                fields = _proc_stat(pid)
            except (OSError, ValueError):
                if not Path("/proc").exists():
                    self.available = False
                continue
            cpu = (int(fields[11]) + int(fields[12])) / self.tick
            if pid not in self.first:
                self.first[pid] = cpu if initial else 0.0
                self.by_database[pid] = datname
            self.last[pid] = cpu

    def _sample(self) -> None:
        while not self.stop.wait(self.interval):
            self._read()

    def seconds(self, database: str | None = None) -> float | None:
        if not self.available:
            return None
        return sum(
            self.last[pid] - self.first[pid]
            for pid in self.last
            if database is None or self.by_database[pid] == database
        )


def postgres_cpu_seconds() -> float | None:
    """The whole server's CPU time: every database's backends, other people's work included (see
    ``BackendCPU`` for the run's own). CPU time the PostgreSQL server's processes have used so far,
    those that exited included (they count in the postmaster's children time), read from /proc; None
    when the server is not on this machine or /proc cannot tell. The difference of two readings is the
    server's CPU time in between."""
    try:
        with psycopg.connect(f"{PG}/postgres") as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        postmaster = int(_proc_stat(backend)[1])
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, psycopg.Error):
        return None
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _proc_stat(int(entry.name))
        except (OSError, ValueError):
            continue  # exited meanwhile
        # After the name: state, ppid, … utime, stime, cutime, cstime (stat fields 14 to 17).
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        if int(entry.name) == postmaster:
            ticks += utime + stime + cutime + cstime
        elif int(fields[1]) == postmaster:
            ticks += utime + stime
    return ticks / tick


def _proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the process name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def machine() -> dict:
    with psycopg.connect(f"{PG}/postgres") as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections')"
            ).fetchall()
        )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    import django

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": server,
        "postgresql_settings": settings,
        "load_average": os.getloadavg(),
    }


def emit(result: dict, *, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(result, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("")
    table.add_column("")

    def add(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                add(f"{prefix}{key}.", inner)
        else:
            table.add_row(prefix.rstrip("."), str(value))

    add("", result)
    Console().print(table)
