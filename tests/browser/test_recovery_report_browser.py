"""The recovery report in a real browser, as support reads it: in English and Japanese, axe-clean,
its charts drawn, and its CSV downloaded from the page."""

import csv
import io

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from accounts.models import Profile
from tests import recovery_scenario
from tests.recovery_scenario import START, TODAY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = ("serious", "critical")
HEADLINE = {"en": "Revenue recovered by backups", "ja": "予備の支払方法で回収した売上"}


@pytest.mark.parametrize("language", ["en", "ja"])
def test_support_reads_the_report_and_downloads_it(browser, live_server, language, screenshots):
    recovery_scenario.scenario()
    agent = recovery_scenario.support_agent(username="kumiko", password="demo")
    Profile.objects.create(user=agent, language=language)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url, accept_downloads=True
    )
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "kumiko")
    page.fill("#id_password", "demo")
    page.click("[type=submit]")

    # From the invoice list, the way support finds it.
    page.goto("/admin/invoices/invoice/")
    page.click("a[href='/admin/invoices/invoice/recovery/']")
    page.select_option("#id_currency", "USD")
    page.fill("#id_start", START.isoformat())
    page.fill("#id_end", TODAY.isoformat())
    page.locator("form.recovery-period [type=submit]").click()

    headline = page.locator("#recovered-heading")
    expect(headline).to_have_text(HEADLINE[language])
    expect(page.locator(".recovery-amount")).to_contain_text("500.00")
    expect(page.locator("svg.recovery-chart")).to_have_count(2)
    expect(page.locator("svg.recovery-chart rect")).to_have_count(3)
    page.screenshot(path=str(screenshots / f"recovery-report-{language}.png"), full_page=True)

    results = Axe().run(page)
    blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING]
    assert not blocking, [(v["id"], [node["html"][:160] for node in v["nodes"]]) for v in blocking]

    with page.expect_download() as download:
        page.locator("a[download]").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = {(row[0], row[1]): row[2:] for row in csv.reader(io.StringIO(text)) if len(row) > 2}
    recovered = [values for (section, _item), values in rows.items() if values[1:] == ["500.00", "USD"]]
    assert recovered and recovered[0][0] == "2"
    context.close()
