"""Two refunds of one invoice at the same moment (two support agents, two tabs): the invoice's row
lock makes the second see the first, so together they never give back more than was paid."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from invoices.models import Invoice, Refund
from invoices.refunds import refund_record
from invoices.settlement import invoice_pay_now
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def test_concurrent_refunds_never_exceed_what_was_paid():
    account = AccountFactory()
    utils.add_card(account)
    invoice = InvoiceFactory(account=account, amount_minor=10_000, currency="USD")
    invoice_pay_now(invoice=invoice, actor=None)
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert invoice.status == Invoice.Status.PAID

    start = threading.Barrier(4)
    outcomes = []

    def refund():
        try:
            start.wait()
            refund_record(invoice=invoice, amount_minor=4_000, actor=None)
            outcomes.append("recorded")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=refund) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["recorded", "recorded", "refused", "refused"]
    assert sum(Refund.objects.values_list("amount_minor", flat=True)) == 8_000
