"""Invoice PDFs: what they say, read back from the PDF's text, in English and Japanese; who may
download them; that they load nothing from outside; and the receipt email that carries one."""

import datetime
import io
import re

import pypdf
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from accounts.models import Membership, Profile
from invoices import documents
from invoices.models import Invoice, PaymentAttempt
from invoices.settlement import invoice_pay_now, settlement_run
from notifications.models import SentEmail
from tests import utils
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    TokenFactory,
    UserFactory,
)

PAID_AT = datetime.datetime(2026, 11, 20, 3, 4, tzinfo=datetime.UTC)


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def pdf_fonts(content: bytes) -> set[str]:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }


def paid_invoice(account, *, number, amount_minor, currency, brand="Visa", last4="4242"):
    method = PaymentMethodFactory(account=account, brand=brand, last4=last4, token="tok_secret_123")
    invoice = InvoiceFactory(
        account=account,
        number=number,
        amount_minor=amount_minor,
        currency=currency,
        description="クラウド利用料 2026年11月",
        issued_on=datetime.date(2026, 11, 1),
        due_on=datetime.date(2026, 11, 15),
    )
    attempt = PaymentAttemptFactory(
        invoice=invoice, method=method, status=PaymentAttempt.Status.SUCCEEDED, decline_code=""
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=PAID_AT, paid_by_attempt=attempt, paid_by_method=method
    )
    return Invoice.objects.select_related("account", "paid_by_method").get(pk=invoice.pk)


@pytest.fixture
def account():
    return AccountFactory(name="株式会社サンプル商事 髙橋", billing_email="ap@sample.example", currency="JPY")


@pytest.mark.django_db
def test_an_english_pdf_of_a_paid_yen_invoice(account, settings):
    settings.BILLING_SELLER_NAME = "Cloud Works Ltd"
    settings.BILLING_SELLER_ADDRESS = "1 Harbour Street\nLondon EC1A 1AA"
    settings.BILLING_SELLER_TAX_ID = "GB123456789"
    invoice = paid_invoice(account, number="INV-2026-0007", amount_minor=1_200, currency="JPY")
    with translation.override("en"), timezone.override(datetime.UTC):
        content = documents.invoice_pdf(invoice)
    text = pdf_text(content)
    for words in [
        "Invoice",
        "INV-2026-0007",
        "Cloud Works Ltd",
        "1 Harbour Street",
        "London EC1A 1AA",
        "GB123456789",
        "株式会社サンプル商事 髙橋",  # the customer's own name, in its own script
        "ap@sample.example",
        "Issued Nov. 1, 2026",
        "Due Nov. 15, 2026",
        "クラウド利用料 2026年11月",
        "¥1,200",  # yen have no minor unit
        "Paid",
        "Paid with Visa •••• 4242",
        "Paid on Nov. 20, 2026, 3:04 a.m.",
    ]:
        assert words in text, words
    assert "¥1,200.00" not in text
    assert "tok_secret" not in text
    # One font, ours, embedded (a subset): nothing was left to the machine's fonts.
    assert {re.sub(r"^/[A-Z]{6}\+", "", name) for name in pdf_fonts(content)} <= {
        "Invoice-Gothic",
        "Invoice-Gothic-Bold",
    }
    assert all(re.match(r"^/[A-Z]{6}\+", name) for name in pdf_fonts(content))


@pytest.mark.django_db
def test_a_japanese_pdf_of_a_paid_dinar_invoice(account):
    invoice = paid_invoice(
        account, number="INV-2026-0008", amount_minor=1_234, currency="KWD", brand="Mastercard", last4="4444"
    )
    with translation.override("ja"), timezone.override(datetime.UTC):
        text = pdf_text(documents.invoice_pdf(invoice))
    for words in [
        "請求書",
        "INV-2026-0008",
        "請求元",
        "請求先",
        "株式会社サンプル商事 髙橋",
        "発行日 2026年11月1日",
        "支払期日 2026年11月15日",
        "KWD",
        "1.234",  # three decimals for the dinar
        "支払い済み",
        "お支払い方法：Mastercard •••• 4444",
        "お支払い日時：2026年11月20日",
    ]:
        assert words in text, words
    assert "1.23 " not in text and "1.2340" not in text


@pytest.mark.django_db
def test_an_open_invoice_says_what_is_due_and_nothing_about_a_payment(account):
    invoice = InvoiceFactory(account=account, number="INV-OPEN", amount_minor=500_000, currency="JPY")
    with translation.override("en"):
        text = pdf_text(documents.invoice_pdf(invoice))
    assert "Open" in text and "Total due" in text and "¥500,000" in text
    assert "Paid with" not in text and "Paid on" not in text


@pytest.mark.django_db
def test_a_document_loads_only_its_own_files():
    fetcher = documents.LocalAssetFetcher()
    assert fetcher.fetch((documents.ASSETS / "ipaexg.ttf").as_uri()).read()[:4] == b"\x00\x01\x00\x00"
    for url in [
        "https://example.com/logo.png",
        "http://127.0.0.1:8000/static/console/app.css",
        "data:text/css,body{}",
        (documents.ASSETS / ".." / "models.py").resolve().as_uri(),
        "file:///etc/passwd",
        "file://evil.example/share/x.css",
    ]:
        with pytest.raises(documents.RefusedResource):
            fetcher.fetch(url)


@pytest.mark.django_db
def test_a_template_that_asks_for_another_file_fails_as_an_ordinary_error(account, monkeypatch):
    monkeypatch.setattr(
        documents,
        "render_to_string",
        lambda name, context: '<link rel="stylesheet" href="https://cdn.example/x.css">',
    )
    with pytest.raises(documents.RefusedResource):
        documents.invoice_pdf(InvoiceFactory(account=account))


@pytest.mark.django_db
def test_an_invoice_description_cannot_make_the_pdf_fetch_anything(account, monkeypatch):
    asked = []
    original = documents.LocalAssetFetcher.fetch

    def recording(self, url, headers=None):
        asked.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(documents.LocalAssetFetcher, "fetch", recording)
    invoice = InvoiceFactory(
        account=account, description='<img src="https://tracker.example/x.png"><link rel=stylesheet href=//x>'
    )
    text = pdf_text(documents.invoice_pdf(invoice))
    assert '<img src="https://tracker.example/x.png">' in text.replace("\n", "")
    assert [url.rsplit("/", 1)[-1] for url in asked] == ["ipaexg.ttf"]


# Downloads ----------------------------------------------------------------------------------------


@pytest.fixture
def member(client, account):
    membership = MembershipFactory(account=account, role=Membership.Role.VIEWER)
    client.force_login(membership.user)
    return membership


@pytest.mark.django_db
def test_the_console_downloads_the_pdf_in_the_members_language(client, member, account):
    invoice = paid_invoice(account, number="INV/2026 09", amount_minor=1_200, currency="JPY")
    Profile.objects.create(user=member.user, language="ja")
    response = client.get(reverse("invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice-INV_2026_09.pdf"'
    assert "請求書" in pdf_text(response.content) and "￥1,200" in pdf_text(response.content)


@pytest.mark.django_db
def test_the_list_and_the_invoice_page_link_to_the_pdf(client, member, account):
    invoice = InvoiceFactory(account=account)
    url = reverse("invoice_pdf", args=[invoice.pk])
    for page in (reverse("invoices"), reverse("invoice_detail", args=[invoice.pk])):
        assert f'href="{url}"' in client.get(page).content.decode()


@pytest.mark.django_db
def test_another_accounts_invoice_pdf_is_a_404(client, member):
    theirs = InvoiceFactory()
    assert client.get(reverse("invoice_pdf", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("invoice_pdf", args=[theirs.pk + 1000])).status_code == 404


@pytest.mark.django_db
def test_signed_out_the_pdf_is_a_redirect_to_sign_in(client):
    invoice = InvoiceFactory()
    response = client.get(reverse("invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.django_db
def test_the_api_serves_the_pdf_and_refuses_another_accounts(account):
    membership = MembershipFactory(account=account, role=Membership.Role.BILLING)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    invoice = paid_invoice(account, number="INV-API-1", amount_minor=1_234, currency="KWD")
    response = api.get(f"/api/invoices/{invoice.pk}/pdf/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "KWD" in pdf_text(response.content) and "1.234" in pdf_text(response.content)
    japanese = api.get(f"/api/invoices/{invoice.pk}/pdf/", HTTP_ACCEPT_LANGUAGE="ja")
    assert "請求書" in pdf_text(japanese.content)

    theirs = InvoiceFactory()
    for path in (f"/api/invoices/{theirs.pk}/pdf/", "/api/invoices/nope/pdf/"):
        refused = api.get(path, HTTP_ACCEPT="application/pdf")
        assert refused.status_code == 404
        assert refused["Content-Type"] == "application/json"
    assert APIClient().get(f"/api/invoices/{invoice.pk}/pdf/").status_code == 401


@pytest.mark.django_db
def test_the_schema_documents_the_downloads(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    pdf = schema["paths"]["/api/invoices/{id}/pdf/"]["get"]
    assert pdf["operationId"] == "invoices_pdf"
    assert set(pdf["responses"]["200"]["content"]) == {"application/pdf"}
    assert pdf["responses"]["404"]["content"]["application/json"]
    export = schema["paths"]["/api/invoices/export/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv"}
    assert "status" in {p["name"] for p in export["parameters"]}


# Receipts -----------------------------------------------------------------------------------------


def _receipts(mailoutbox):
    return [m for m in mailoutbox if m.attachments]


def send_notifications():
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_paid_invoice_sends_one_receipt_with_its_pdf_to_the_billing_contacts(mailoutbox):
    account = AccountFactory(
        name="Smith & Co",
        billing_email="ap@smith.example",
        billing_recipients=["finance@smith.example"],
        currency="JPY",
    )
    owner = UserFactory(email="owner@smith.example")
    japanese = UserFactory(email="hanako@smith.example")
    viewer = UserFactory(email="viewer@smith.example")
    MembershipFactory(account=account, user=owner, role=Membership.Role.OWNER)
    MembershipFactory(account=account, user=japanese, role=Membership.Role.BILLING)
    MembershipFactory(account=account, user=viewer, role=Membership.Role.VIEWER)
    Profile.objects.create(user=japanese, language="ja")
    utils.add_card(account, utils.SUCCEEDS, actor=owner)
    invoice = InvoiceFactory(account=account, number="INV-RCPT-1", amount_minor=1_200, currency="JPY")

    settlement_run()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID

    # Queued with the payment; typeset and sent by send_notifications, not by the run.
    receipts = SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT)
    assert receipts.count() == 1
    assert receipts.get().status == SentEmail.Status.QUEUED and not _receipts(mailoutbox)
    assert send_notifications() == "Sent 1 email(s).\n"
    receipt = receipts.get()
    assert receipt.status == SentEmail.Status.SENT, receipt.error
    assert receipt.event_key == f"receipt:{invoice.pk}:{invoice.paid_by_attempt_id}"
    # The billing contacts: owners and billing members, the billing email and the further
    # recipients; not viewers.
    assert sorted(receipt.recipients) == [
        "ap@smith.example",
        "finance@smith.example",
        "hanako@smith.example",
        "owner@smith.example",
    ]

    messages = {tuple(m.to): m for m in _receipts(mailoutbox)}
    in_english = ("ap@smith.example", "finance@smith.example", "owner@smith.example")
    assert set(messages) == {in_english, ("hanako@smith.example",)}
    english, ja = messages[in_english], messages[("hanako@smith.example",)]
    assert english.subject.endswith("Receipt for invoice INV-RCPT-1")
    assert "請求書 INV-RCPT-1 の領収書" in ja.subject
    for message, words in ((english, ["Paid with Visa •••• 4242", "¥1,200"]), (ja, ["請求書", "￥1,200"])):
        ((filename, content, mimetype),) = message.attachments
        assert filename == "invoice-INV-RCPT-1.pdf" and mimetype == "application/pdf"
        text = pdf_text(content)
        for word in words:
            assert word in text, word

    # Another run, Pay now and the sender again find it paid and sent: no second receipt.
    settlement_run()
    invoice_pay_now(invoice=invoice, actor=owner)
    assert send_notifications() == "Sent 0 email(s).\n"
    assert SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT).count() == 1
    assert len(_receipts(mailoutbox)) == 2


@pytest.mark.django_db(transaction=True)
def test_each_payment_has_its_own_receipt_and_a_replayed_one_sends_nothing(mailoutbox):
    account = AccountFactory(billing_email="ap@acme.example", currency="USD")
    owner = MembershipFactory(account=account, role=Membership.Role.OWNER).user
    utils.add_card(account, utils.GENERIC_DECLINE, actor=owner)
    utils.add_card(account, utils.SUCCEEDS, actor=owner)
    first = InvoiceFactory(account=account, number="INV-A", amount_minor=1_234)
    second = InvoiceFactory(account=account, number="INV-B", amount_minor=5_000)
    settlement_run()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == Invoice.Status.PAID
    keys = set(SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT).values_list("event_key", flat=True))
    assert keys == {
        f"receipt:{first.pk}:{first.paid_by_attempt_id}",
        f"receipt:{second.pk}:{second.paid_by_attempt_id}",
    }
    # Paid by a backup: the backup notice and the receipt, each once.
    assert SentEmail.objects.filter(kind=SentEmail.Kind.BACKUP_CHARGED).count() == 2

    # The same event queued again (a retried step, a re-delivered webhook) is not sent twice.
    from invoices.settlement import emails
    from notifications.services import notification_queue_many

    attempt = PaymentAttempt.objects.select_related("method").get(pk=first.paid_by_attempt_id)
    assert notification_queue_many([emails.receipt(invoice=first, attempt=attempt)]) == []
    send_notifications()
    assert len(_receipts(mailoutbox)) == 2
    assert send_notifications() == "Sent 0 email(s).\n"
    assert len(_receipts(mailoutbox)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_bank_debit_that_clears_later_sends_its_receipt_then(mailoutbox, settings):
    account = AccountFactory(billing_email="ap@sepa.example", currency="EUR")
    MembershipFactory(account=account, role=Membership.Role.OWNER)
    utils.add_sepa(account)
    invoice = InvoiceFactory(account=account, number="INV-SEPA", amount_minor=2_500, currency="EUR")
    settlement_run()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN  # pending: nothing is paid yet
    assert not SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT).exists()
    settlement_run(as_of=invoice.next_attempt_at + datetime.timedelta(seconds=1))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT).count() == 1
    send_notifications()
    ((_, content, _),) = _receipts(mailoutbox)[0].attachments
    assert "€25.00" in pdf_text(content)


@pytest.mark.django_db(transaction=True)
def test_a_receipt_whose_pdf_cannot_be_made_is_kept_with_its_error(mailoutbox, monkeypatch):
    account = AccountFactory(billing_email="ap@acme.example")
    utils.add_card(account, utils.SUCCEEDS)
    InvoiceFactory(account=account, number="INV-BROKEN")
    settlement_run()

    def broken(invoice):
        raise OSError("no space left on device")

    monkeypatch.setattr(documents, "invoice_pdf", broken)
    assert send_notifications() == "Sent 0 email(s).\n"
    receipt = SentEmail.objects.get(kind=SentEmail.Kind.RECEIPT)
    assert receipt.status == SentEmail.Status.FAILED and "no space left" in receipt.error
    assert not _receipts(mailoutbox)
