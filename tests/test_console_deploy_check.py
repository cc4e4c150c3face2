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


def test_check_deploy_with_production_settings_reports_nothing():
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="billing_console.settings",
        DEBUG="0",
        SECRET_KEY="p" * 20 + "-production-secret-key-of-more-than-fifty-characters-9f3k2",
        ALLOWED_HOSTS="billing.example.com",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr
    assert "deploy-check-clean" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
