import os
import shutil

import pytest
from django.conf import settings
from django.db import connections
from django.utils import translation

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_collection_modifyitems(config, items):
    on_postgres = connections["default"].vendor == "postgresql"
    have_chromium = shutil.which(CHROMIUM) is not None
    for item in items:
        # Every database test sees both our database and the sandbox gateway's ledger.
        marker = item.get_closest_marker("django_db")
        if marker is not None and "databases" not in marker.kwargs:
            kwargs = dict(marker.kwargs, databases="__all__")
            if marker.args:
                kwargs.setdefault("transaction", marker.args[0])
            item.add_marker(pytest.mark.django_db(**kwargs), append=False)
        if item.get_closest_marker("postgres") and not on_postgres:
            item.add_marker(
                pytest.mark.skip(
                    reason="PostgreSQL only (row locks and real concurrency): set DATABASE_URL=postgres://…"
                )
            )
        if item.get_closest_marker("browser") and not have_chromium:
            item.add_marker(
                pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}: apt-get install chromium")
            )


def pytest_report_header(config):
    vendor = connections["default"].vendor
    return f"database: {vendor}" + (
        "" if vendor == "postgresql" else " (PostgreSQL-only tests will be skipped)"
    )


@pytest.fixture(autouse=True)
def _language_reset():
    # A request in Japanese must not leave the next test speaking Japanese.
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _plain_test_settings(settings):
    # The real hasher costs a second per user; tests make hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SANDBOX_LATENCY_MS = 0
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="module")
def localstripe():
    """A fake Stripe server of this test module's own (tests/stripe_support.py): its base address."""
    from tests.stripe_support import running_localstripe

    with running_localstripe() as base:
        yield base


@pytest.fixture
def stripe_gateway(settings, localstripe):
    """The Stripe gateway, pointed at localstripe, is the active one: a client to look at its side."""
    from tests.stripe_support import use_localstripe

    return use_localstripe(settings, localstripe)
