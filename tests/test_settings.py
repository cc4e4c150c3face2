"""A bad environment value stops start-up with a message that names the setting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def start(**overrides: str) -> subprocess.CompletedProcess:
    """Start Django in a fresh process with ``overrides`` on top of a known-good environment."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_console.settings",
        "DEBUG": "1",
        "SECRET_KEY": "test-only-secret-key",
    }
    for name in ("DATABASE_URL", "SANDBOX_DATABASE_URL", "CACHE_URL", "EMAIL_URL", "BILLING_RETRY_DAYS"):
        env.pop(name, None)
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_good_environment_starts():
    result = start(DEBUG="0", DATABASE_URL="postgres://billing@db.internal:5432/billing")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("setting", "overrides"),
    [
        ("DEBUG", {"DEBUG": "maybe"}),
        ("DATABASE_URL", {"DATABASE_URL": "postgres//nohost"}),
        ("DATABASE_URL", {"DATABASE_URL": "nosuchscheme://x"}),
        ("DATABASE_URL", {"DATABASE_URL": "postgres://db.internal"}),
        ("DATABASE_URL", {"DATABASE_URL": "postgres://u@db.internal:notaport/billing"}),
        ("SANDBOX_DATABASE_URL", {"SANDBOX_DATABASE_URL": "nosuchscheme://x"}),
        # An empty value counts as missing: a .env file cannot quietly fill it in.
        ("SECRET_KEY", {"DEBUG": "0", "SECRET_KEY": ""}),
        ("BILLING_RETRY_DAYS", {"BILLING_RETRY_DAYS": "3,1"}),
        ("BILLING_RETRY_DAYS", {"BILLING_RETRY_DAYS": "1,three"}),
        ("BILLING_MAX_BACKUPS", {"BILLING_MAX_BACKUPS": "-1"}),
        ("GATEWAY_TIMEOUT_SECONDS", {"GATEWAY_TIMEOUT_SECONDS": "soon"}),
        ("GATEWAY_MAX_REQUESTS_PER_SECOND", {"GATEWAY_MAX_REQUESTS_PER_SECOND": "-5"}),
        ("PAYMENT_GATEWAY", {"PAYMENT_GATEWAY": "paypal"}),
        ("CACHE_URL", {"CACHE_URL": "nosuchcache://x"}),
        ("EMAIL_URL", {"EMAIL_URL": "pigeon://x"}),
        ("TIME_ZONE", {"TIME_ZONE": "Mars/Olympus_Mons"}),
        ("LOG_LEVEL", {"LOG_LEVEL": "LOUD"}),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_setting(setting, overrides):
    result = start(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert setting in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("cache_url", "engine"),
    [
        ("redis://127.0.0.1:6379/0", "django.contrib.sessions.backends.cached_db"),
        ("locmemcache://billing", "django.contrib.sessions.backends.db"),
        ("dbcache://billing_cache", "django.contrib.sessions.backends.db"),
    ],
)
def test_sessions_are_cached_only_in_a_cache_every_process_shares(cache_url, engine):
    """Signing out in one process must reach every other: a cache of one process holds no session."""
    script = "import django; django.setup(); from django.conf import settings; print(settings.SESSION_ENGINE)"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_console.settings",
        "DEBUG": "1",
        "CACHE_URL": cache_url,
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == engine


def test_the_redis_cache_keeps_one_client_per_server():
    from core.cache import RedisCache

    cache = RedisCache("redis://127.0.0.1:6379/0", {})
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b", write=True) is client
    assert client.connection_pool is cache._cache._get_connection_pool(write=True)
