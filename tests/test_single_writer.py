"""One writer: only the state machine assigns an invoice's status, what paid it, or an attempt's
outcome. A grep over the code, so a new shortcut fails here rather than in a customer's invoice."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["core", "accounts", "notifications", "payments", "invoices", "billing_console"]
STATE_MACHINE = ROOT / "invoices" / "transitions.py"
# The sandbox gateway keeps its own ledger of charges, with statuses of its own.
OWN_LEDGER = {ROOT / "payments" / "gateways" / "sandbox.py"}

# invoice.status = …, attempt.paid_at = …, x.decline_code = …
ASSIGNMENT = re.compile(
    r"\b(?P<obj>\w*(invoice|attempt)\w*)\.(?P<field>status|paid_at|paid_by_attempt|paid_by_method|"
    r"paid_by_method_id|paid_by_backup|paid_by_position|decline_code|decline_class|completed_at|gateway_reference)\s*=(?!=)",
    re.IGNORECASE,
)
# Invoice.objects….update(status=…) or PaymentAttempt.objects….update(paid_at=…), on one statement.
QUERYSET_WRITE = re.compile(
    r"(Invoice|PaymentAttempt)\.objects[^\n]*?(?:\n[^\n]*?){0,3}\.update\([^)]*\b(status|paid_at|paid_by_\w+|"
    r"decline_code|decline_class)\s*=",
)


def _sources():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or path == STATE_MACHINE or path in OWN_LEDGER:
                continue
            yield path


def test_only_the_state_machine_assigns_invoice_and_attempt_outcomes():
    offenders = []
    for path in _sources():
        text = path.read_text()
        for pattern in (ASSIGNMENT, QUERYSET_WRITE):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert offenders == []


def test_the_grep_would_catch_a_shortcut(tmp_path):
    shortcut = "invoice.status = Invoice.Status.PAID\nattempt.decline_code = 'x'\n"
    shortcut += "Invoice.objects.filter(pk=1).update(status='paid')\n"
    found = [m.group(0) for pattern in (ASSIGNMENT, QUERYSET_WRITE) for m in pattern.finditer(shortcut)]
    assert len(found) == 3
