"""Tables show their whole text: at 1280 px no cell of any console table, nor of the admin's
invoice page, is cut, ellipsised or scrolled out of sight; on a phone the tables reflow and the
page never scrolls sideways. With the demo data after one settlement run, in English and Japanese."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import Membership, Profile
from billing_console.demo import DEMO_PASSWORD, demo_seed
from invoices.models import Invoice
from invoices.settlement import settlement_run
from tests import utils

# Serialized rollback: the Support group (a data migration) that gives support its admin rights
# is back for every test.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Every cell of every table, and everything in it, keeps its text inside its own box; and no table
# is wider than a box that would scroll or cut it.
CLIPPED = """() => {
  const found = [];
  const describe = (el) => {
    const cell = el.closest('th, td') || el;
    const table = el.closest('table');
    const header = table && cell.cellIndex >= 0 && table.tHead
      ? (table.tHead.rows[0].cells[cell.cellIndex] || {}).textContent : '';
    return [(header || '').trim(), (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 60),
            el.scrollWidth, el.clientWidth];
  };
  for (const table of document.querySelectorAll('table')) {
    if (!table.getClientRects().length) continue;  // not shown
    for (const cell of table.querySelectorAll('th, td')) {
      for (const el of [cell, ...cell.querySelectorAll('*')]) {
        if (!el.clientWidth) continue;  // inline text: its block is measured
        if (el.closest('.visually-hidden')) continue;  // words for screen readers, clipped on purpose
        if (el.scrollWidth > el.clientWidth + 1) found.push(describe(el));
      }
    }
    for (let box = table.parentElement; box && box !== document.body; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow !== 'visible' && box.scrollWidth > box.clientWidth + 1) {
        found.push(['(table box)', box.className, box.scrollWidth, box.clientWidth]);
      }
    }
  }
  return found;
}"""


@pytest.fixture
def demo_after_one_run():
    cache.clear()
    utils.support_group_ensure()
    demo_seed()
    settlement_run()


def sign_in(page, path, username):
    page.goto(path)
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("[type=submit]").last.click()


def console_pages(page, account_ids) -> list[str]:
    """Every console page of every account of the signed-in member (an invoice of each status)."""
    paths = []
    for account_id in account_ids:
        invoices = Invoice.objects.filter(account_id=account_id).order_by("status", "pk")
        detail = {invoice.status: invoice.pk for invoice in invoices}
        paths += [
            f"/?account={account_id}",
            f"/payment-methods/?account={account_id}",
            f"/invoices/?account={account_id}",
            f"/activity/?account={account_id}",
            *(f"/invoices/{pk}/?account={account_id}" for pk in detail.values()),
        ]
    return paths


def assert_fits(page, paths, where):
    problems, tables = [], 0
    page.set_viewport_size({"width": 1280, "height": 900})
    for path in paths:
        page.goto(path)
        tables += page.locator("table").count()
        if clipped := page.evaluate(CLIPPED):
            problems.append((path, clipped))
    page.set_viewport_size({"width": 390, "height": 844})
    for path in paths:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            problems.append((path, f"scrolls sideways on a phone ({width}px)"))
    assert tables >= len(paths) // 2, f"{where}: the pages show only {tables} tables"
    assert not problems, (where, problems)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_no_table_cuts_its_text(browser, live_server, demo_after_one_run, language):
    context = browser.new_context(
        locale={"en": "en-US", "ja": "ja-JP"}[language],
        viewport={"width": 1280, "height": 900},
        base_url=live_server.url,
    )
    page = context.new_page()
    sign_in(page, "/sign-in/", "demo")
    expect(page).to_have_url(re.compile("/$"))
    demo = Membership.objects.filter(user__username="demo").select_related("user")
    Profile.objects.update_or_create(user=demo.first().user, defaults={"language": language})
    account_ids = list(demo.values_list("account_id", flat=True))
    assert len(account_ids) > 1
    assert_fits(page, console_pages(page, account_ids), f"console in {language}")
    context.clear_cookies()

    sign_in(page, "/admin/login/", "support")
    expect(page).to_have_url(re.compile("/admin/$"))
    attempted = Invoice.objects.filter(attempts__isnull=False).distinct().order_by("pk")
    admin_pages = [f"/admin/invoices/invoice/{invoice.pk}/change/" for invoice in attempted]
    assert len(admin_pages) > 3
    assert_fits(page, admin_pages, f"admin in {language}")
    context.close()
