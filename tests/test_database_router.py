"""Each app's tables and migration records live in its own database: the sandbox ledger in the
sandbox database, everything else in the default one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

ROOT = Path(__file__).resolve().parent.parent


def _recorded_apps(alias):
    return {app for app, _name in MigrationRecorder(connections[alias]).applied_migrations()}


@pytest.mark.django_db
def test_test_databases_hold_only_their_own_apps():
    assert _recorded_apps("sandbox") == {"sandbox"}
    assert "sandbox" not in _recorded_apps("default")
    assert {"accounts", "invoices", "payments"} <= _recorded_apps("default")
    sandbox_tables = set(connections["sandbox"].introspection.table_names()) - {"django_migrations"}
    assert sandbox_tables and all(name.startswith("sandbox_") for name in sandbox_tables)
    assert not [
        name for name in connections["default"].introspection.table_names() if name.startswith("sandbox_")
    ]


# Stock `migrate` first (as an older checkout did), then the product's: the stray records go.
SCRIPT = """
import django
from django.core.management import call_command
from django.core.management.commands import migrate as stock
django.setup()
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

def apps(alias):
    return sorted({app for app, _ in MigrationRecorder(connections[alias]).applied_migrations()})

call_command(stock.Command(), database="sandbox", verbosity=0)
print("stock", apps("sandbox"))
call_command("migrate", database="sandbox", verbosity=0)
print("after", apps("sandbox"))
"""


def _env(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="billing_console.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SANDBOX_DATABASE_URL=f"sqlite:///{tmp_path / 'sandbox.sqlite3'}",
    )
    return env


def _manage(env, *args):
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_fresh_sqlite_migrate_keeps_each_app_in_its_database(tmp_path):
    env = _env(tmp_path)
    _manage(env, "migrate", "--noinput", "-v0")
    sandbox_run = _manage(env, "migrate", "--noinput", "--database", "sandbox")
    assert "Applying sandbox.0001_initial" in sandbox_run
    assert "Applying accounts." not in sandbox_run

    listed = _manage(env, "showmigrations", "--database", "sandbox")
    assert listed.split() == [
        "sandbox",
        "[X]",
        "0001_initial",
        "[X]",
        "0002_customers_and_method_display",
        "[X]",
        "0003_charge_announced_at",
    ]
    assert "sandbox" not in _manage(env, "showmigrations").split()

    # The sandbox database's records and tables are the ledger's alone, and ours hold none of its.
    import sqlite3

    with sqlite3.connect(tmp_path / "sandbox.sqlite3") as db:
        assert {row[0] for row in db.execute("select app from django_migrations")} == {"sandbox"}
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    assert {name for name in tables if not name.startswith(("sandbox_", "sqlite_"))} == {"django_migrations"}
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert not list(db.execute("select name from django_migrations where app = 'sandbox'"))
        assert not list(db.execute("select name from sqlite_master where name like 'sandbox%'"))

    # A second run has nothing to do in either database.
    assert "No migrations to apply" in _manage(env, "migrate", "--noinput", "--database", "sandbox")
    assert "No migrations to apply" in _manage(env, "migrate", "--noinput")


def test_migrate_forgets_records_an_older_migrate_left_in_the_wrong_database(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stock, after = result.stdout.splitlines()[-2:]
    assert "'accounts'" in stock and "'invoices'" in stock
    assert after == "after ['sandbox']"


# A PostgreSQL DATABASE_URL whose sandbox twin does not exist: created when the server allows it,
# otherwise one line saying how, never a traceback.


def _server():
    from django.conf import settings

    default = settings.DATABASES["default"]
    return {
        "host": default.get("HOST") or "127.0.0.1",
        "port": str(default.get("PORT") or 5432),
        "user": default.get("USER") or "postgres",
        "password": default.get("PASSWORD") or None,
    }


def _admin(*statements):
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as conn:
        for statement in statements:
            conn.execute(statement)


def _exists(name):
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone() is not None


def _postgres_env(name, user=None):
    server = _server()
    password = f":{server['password']}" if server["password"] else ""
    url = f"postgres://{user or server['user']}{password}@{server['host']}:{server['port']}/{name}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "SANDBOX_DATABASE_URL"))
    }
    env.update(DJANGO_SETTINGS_MODULE="billing_console.settings", DATABASE_URL=url)
    return env


def _run(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.postgres
def test_missing_sandbox_database_is_created_by_migrate_and_by_seed_demo():
    name = f"billing_sandbox_twin_{os.getpid()}"
    twin = f"{name}_sandbox"
    drop = [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in (twin, name)]
    _admin(*drop, f'CREATE DATABASE "{name}"')
    try:
        env = _postgres_env(name)
        result = _run(env, "migrate", "--noinput", "--database", "sandbox")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert _exists(twin)
        assert _run(env, "showmigrations", "--database", "sandbox").stdout.split() == [
            "sandbox",
            "[X]",
            "0001_initial",
            "[X]",
            "0002_customers_and_method_display",
            "[X]",
            "0003_charge_announced_at",
        ]

        # seed_demo on a migrated database whose twin went missing: created, with its tables.
        _admin(f'DROP DATABASE "{twin}" WITH (FORCE)')
        assert _run(env, "migrate", "--noinput", "-v0").returncode == 0
        result = _run(env, "seed_demo", "--force")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert _exists(twin)
    finally:
        _admin(*drop)


@pytest.mark.postgres
def test_missing_sandbox_database_the_role_may_not_create_stops_with_one_line():
    name = f"billing_sandbox_twin_{os.getpid()}_nocreate"
    twin = f"{name}_sandbox"
    role = f"billing_sandbox_twin_{os.getpid()}"
    drop = [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in (twin, name)]
    _admin(*drop, f'DROP ROLE IF EXISTS "{role}"', f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        _admin(f'CREATE DATABASE "{name}" OWNER "{role}"')
        env = _postgres_env(name, user=role)
        assert _run(env, "migrate", "--noinput", "-v0").returncode == 0
        for command in (["migrate", "--noinput", "--database", "sandbox"], ["seed_demo", "--force"]):
            result = _run(env, *command)
            assert result.returncode == 1, result.stdout + result.stderr
            assert "Traceback" not in result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert lines[0].startswith(f'CommandError: The sandbox database "{twin}" does not exist')
            server = _server()
            command = f"createdb -h {server['host']} -p {server['port']} -U {role} {twin}"
            assert lines[0].endswith(f"Create it with: {command}")
        assert not _exists(twin)
    finally:
        _admin(*drop, f'DROP ROLE IF EXISTS "{role}"')
