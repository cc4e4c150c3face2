"""EMAIL_URL: a file drop goes where its URL says, and the development console prints an email as
a person reads it."""

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

SEND = """
import django
django.setup()
from django.core.mail import EmailMultiAlternatives
message = EmailMultiAlternatives(
    subject="Security notice: the charge order of Smith & Co changed",
    body="Primary: Visa •••• 4242 — a line long enough that a raw MIME message would cut it in two.",
    to=["olga@smith.example"],
)
message.attach_alternative("<p>Primary: Visa •••• 4242</p>", "text/html")
message.send()
"""


def send(**environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "billing_console.settings", "SECRET_KEY": "test-only"}
    env.pop("EMAIL_URL", None)
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", SEND], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


def test_a_file_drop_with_an_absolute_path_writes_there(tmp_path):
    folder = tmp_path / "outbox"
    send(DEBUG="1", EMAIL_URL=f"filemail://{folder}")  # filemail:///…/outbox
    [written] = folder.iterdir()
    assert "Subject: Security notice" in written.read_text()
    assert not (PROJECT / str(folder).lstrip("/")).exists()


def test_the_development_console_prints_the_text_part_readably():
    printed = send(DEBUG="1").stdout  # DEBUG on: consolemail:// by default
    assert "To: olga@smith.example" in printed
    assert "Subject: Security notice: the charge order of Smith & Co changed" in printed
    assert (
        "Primary: Visa •••• 4242 — a line long enough that a raw MIME message would cut it in two." in printed
    )
    assert "[text/html part: 30 characters]" in printed
    assert "=E2=80=A2" not in printed and "Content-Transfer-Encoding" not in printed
