"""Production settings pass `manage.py check --deploy` without a single warning."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import django
from django.core.management import call_command
django.setup()
call_command("check", deploy=True, fail_level="DEBUG")
print("deploy-check-clean")
"""


def _production_env(**extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_", "CACHE_URL"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="billing_console.settings",
        DEBUG="0",
        SECRET_KEY="p" * 20 + "-production-secret-key-of-more-than-fifty-characters-9f3k2",
        ALLOWED_HOSTS="billing.example.com",
    )
    env.update(extra)
    return env


def _check_deploy(env, script=SCRIPT):
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_with_production_settings_reports_nothing():
    # Production runs several processes, so its limits count in a shared cache (Redis here).
    result = _check_deploy(_production_env(CACHE_URL="redis://127.0.0.1:6379/0"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr
    assert "deploy-check-clean" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "billing.W001" not in result.stdout + result.stderr


WARNINGS_SCRIPT = """
import django
from django.core.management import call_command
django.setup()
call_command("check", deploy=True)
"""


def test_check_deploy_without_a_shared_cache_warns_that_limits_count_per_process():
    result = _check_deploy(_production_env(), WARNINGS_SCRIPT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "(billing.W001) The cache is local memory, local to each process" in output
    assert "Set CACHE_URL" in output
    assert "System check identified 1 issue" in output  # nothing else is wrong with these settings
    # The warning is a real deploy failure where warnings count.
    assert _check_deploy(_production_env()).returncode != 0


def test_check_deploy_with_a_process_local_cache_url_warns_too():
    result = _check_deploy(_production_env(CACHE_URL="locmemcache://billing"), WARNINGS_SCRIPT)
    assert "billing.W001" in result.stdout + result.stderr


def test_check_without_deploy_or_with_debug_says_nothing_of_the_cache():
    plain = _check_deploy(_production_env(), WARNINGS_SCRIPT.replace("deploy=True", "deploy=False"))
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "billing.W001" not in plain.stdout + plain.stderr
    debug = _check_deploy(_production_env(DEBUG="1"), WARNINGS_SCRIPT)
    assert "billing.W001" not in debug.stdout + debug.stderr
