"""Downloads from the console in a real browser: an invoice's PDF from its page and from the list,
the invoice list (as filtered) and the activity log as CSV, in English and Japanese."""

import csv
import io
import re

import pypdf
import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import Membership, Profile
from invoices.models import Invoice
from tests.factories import AccountFactory, AuditEventFactory, InvoiceFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BOM = "\ufeff".encode()


@pytest.fixture(params=["en", "ja"])
def language(request):
    return request.param


@pytest.fixture
def console(browser, live_server, language):
    cache.clear()
    user = UserFactory(username="dl", password="dl-Password-1")
    Profile.objects.create(user=user, language=language)
    account = AccountFactory(name="Acme Robotics", currency="KWD")
    MembershipFactory(user=user, account=account, role=Membership.Role.VIEWER)
    InvoiceFactory(account=account, number="INV-KWD-1", amount_minor=1_234, currency="KWD")
    InvoiceFactory(
        account=account,
        number="INV-JPY-1",
        amount_minor=1_200,
        currency="JPY",
        status=Invoice.Status.PAST_DUE,
    )
    AuditEventFactory(account=account, actor_label="dl")
    context = browser.new_context(accept_downloads=True, base_url=live_server.url)
    page = context.new_page()
    page.goto("/sign-in/")
    page.locator("#id_username").fill("dl")
    page.locator("#id_password").fill("dl-Password-1")
    page.locator("button.button--primary[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))
    yield page
    context.close()


def _download(page, link) -> tuple[str, bytes]:
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.failure() is None
    with open(download.path(), "rb") as file:
        return download.suggested_filename, file.read()


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def test_an_invoice_pdf_downloads_from_its_page_and_from_the_list(console, language):
    words = {"en": ("Download PDF", "Invoice", "KWD"), "ja": ("PDF をダウンロード", "請求書", "KWD")}[
        language
    ]
    console.goto("/invoices/")
    console.get_by_role("link", name="INV-KWD-1", exact=True).click()
    name, content = _download(console, console.get_by_role("link", name=words[0]))
    assert name == "invoice-INV-KWD-1.pdf"
    text = _pdf_text(content)
    assert words[1] in text and words[2] in text and "1.234" in text

    console.goto("/invoices/")
    row_link = {"en": "Download invoice INV-JPY-1 as PDF", "ja": "請求書 INV-JPY-1 を PDF でダウンロード"}[
        language
    ]
    name, content = _download(console, console.get_by_role("link", name=row_link, exact=True))
    assert name == "invoice-INV-JPY-1.pdf"
    assert "1,200" in _pdf_text(content)


def test_the_filtered_invoice_list_and_the_activity_log_download_as_csv(console, language):
    export = {"en": "Export CSV", "ja": "CSV をエクスポート"}[language]
    console.goto("/invoices/?status=past_due")
    name, content = _download(console, console.get_by_role("link", name=export))
    assert name.endswith("-past_due.csv")
    assert content.startswith(BOM)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8").removeprefix("\ufeff"))))
    assert [row[0] for row in rows[1:]] == ["INV-JPY-1"]
    assert rows[1][5:7] == ["1200", "JPY"]
    assert rows[0][0] == {"en": "Invoice", "ja": "請求書"}[language]

    console.goto("/activity/")
    name, content = _download(console, console.get_by_role("link", name=export))
    assert re.fullmatch(r"activity-\d+\.csv", name)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8").removeprefix("\ufeff"))))
    assert len(rows) == 2 and rows[1][3] == "dl"
