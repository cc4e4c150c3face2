"""What the console tells a customer is true: the dashboard's verdict, Pay now's choices, the
attempt timeline and a pending bank debit, read in Chromium as a customer reads them, on the
demo's own accounts (``manage.py seed_demo``)."""

import datetime
import re

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Account
from billing_console.demo import demo_seed
from invoices.models import Invoice, PaymentAttempt
from invoices.settlement import settlement_run
from payments.models import PaymentMethod
from payments.services import charge_order_set

SECOND = datetime.timedelta(seconds=1)
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seeded(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    demo_seed()


@pytest.fixture
def sign_in(browser, live_server, seeded):
    """``sign_in(username, account)``: a page signed in and working in that demo account."""
    contexts = []

    def sign_in(username, account):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.goto("/sign-in/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill("demo")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_title(re.compile("^Dashboard"))
        choose(page.get_by_label("Account"), account)
        expect(page.get_by_text(f"You are now working in {account} (demo).")).to_be_visible()
        return page

    yield sign_in
    for context in contexts:
        context.close()


def choose(select, text):
    """Pick the option of ``select`` whose words contain ``text``."""
    select.select_option(select.locator("option", has_text=text).first.get_attribute("value"))


def verdict(page) -> str:
    """Everything the dashboard says above its figures: the alerts, or the all-clear."""
    page.goto("/")
    texts = page.locator(".alerts .alert__text, div.alert--success .alert__text").all_inner_texts()
    return " ".join(" ".join(t.split()) for t in texts)


def open_invoice(page, account_slug):
    invoice = Invoice.objects.get(number__startswith=f"DEMO-{account_slug}-", status__in=Invoice.COLLECTABLE)
    page.goto(f"/invoices/{invoice.pk}/")
    return invoice


def run_settlement(**kwargs):
    return settlement_run(as_of=timezone.now(), **kwargs)


# 1. The dashboard's verdict -------------------------------------------------------------------


def test_the_dashboard_names_what_will_really_happen(sign_in, screenshots):
    europe = sign_in("demo", "Acme Europe")
    said = verdict(europe)
    europe.screenshot(path=screenshots / "truth-dashboard-acme-europe.png", full_page=True)
    assert "All good" not in said
    assert "Your primary can't pay EUR invoices; Visa •••• 4242 (Backup 1) will be charged." in said

    cloud = sign_in("demo", "Acme Cloud")
    said = verdict(cloud)
    assert "All good" not in said
    assert re.search(r"Invoice DEMO-ACME-0004 \(\$1,284\.50\) was due on .+ and is not paid yet\.", said)

    run_settlement()  # Soylent's bank debit is now pending
    soylent = sign_in("demo2", "Soylent")
    said = verdict(soylent)
    assert "All good" not in said
    assert "waiting for the bank" in said and "Sandbox Bank •••• 4440" in said


def test_the_dashboard_says_when_nothing_can_pay(sign_in):
    europe = sign_in("demo", "Acme Europe")
    # Visa 4242, the only method in the charge order that can pay euros, leaves it.
    account = Account.objects.get(name="Acme Europe (demo)")
    ach = PaymentMethod.objects.get(account=account, kind=PaymentMethod.Kind.ACH_DEBIT)
    charge_order_set(account=account, actor=None, method_ids=[ach.pk])
    said = verdict(europe)
    assert "All good" not in said
    assert "No method in your charge order can pay invoice DEMO-ACMEEU-0001 (€980.00)." in said


def test_all_good_only_when_it_is(sign_in):
    globex = sign_in("demo2", "Globex")
    run_settlement()  # both invoices paid by the primary
    assert verdict(globex) == "All good: Visa •••• 4242 (Primary) will pay your next invoice."


# 2. Pay now offers only what can pay --------------------------------------------------------------


def test_pay_with_offers_only_methods_that_can_pay(sign_in, screenshots):
    europe = sign_in("demo", "Acme Europe")
    open_invoice(europe, "ACMEEU")
    europe.screenshot(path=screenshots / "truth-pay-with-acme-europe.png", full_page=True)
    choices = europe.get_by_label("Pay with").locator("option")
    labels = [" ".join(t.split()) for t in choices.all_inner_texts()]
    assert len(labels) == len(set(labels)), labels
    enabled = choices.evaluate_all("os => os.filter(o => !o.disabled).map(o => o.textContent.trim())")
    assert not any("6789" in label for label in enabled), enabled  # ACH cannot pay EUR
    ach = europe.get_by_label("Pay with").locator("option", has_text="6789")
    expect(ach).to_be_disabled()
    expect(ach).to_contain_text("can't pay EUR invoices")
    assert any("Visa •••• 4242" in label for label in enabled)
    assert any("Sandbox Bank •••• 3000" in label for label in enabled)  # SEPA pays euros


def test_a_skip_is_reported_as_a_skip(sign_in):
    cloud = sign_in("demo", "Acme Cloud")
    invoice = open_invoice(cloud, "ACME")
    # The US bank account can pay USD; block it as a hard decline would, after the page was drawn.
    bank = PaymentMethod.objects.get(account=invoice.account, last4="6789")
    choose(cloud.get_by_label("Pay with"), "Sandbox Bank •••• 6789")
    PaymentMethod.objects.filter(pk=bank.pk).update(
        blocked_at=timezone.now(), blocked_reason="account_closed"
    )
    cloud.get_by_role("button", name=re.compile("^Pay now")).click()
    flash = cloud.locator(".flash").first
    expect(flash).to_contain_text("Nothing was charged")
    expect(flash).to_contain_text("Sandbox Bank •••• 6789")
    expect(flash).not_to_contain_text("Every payment method we tried was declined")


# 3. Timelines tell what happened ------------------------------------------------------------------


def test_a_debit_that_failed_later_and_a_backup_that_paid_next_run(sign_in, screenshots):
    start = timezone.now()
    run_settlement()
    # The bank refuses the debit a few minutes later; the next run finds out and charges Backup 1.
    with time_machine.travel(start + datetime.timedelta(minutes=4), tick=False):
        run_settlement()
    invoice = Invoice.objects.get(number__startswith="DEMO-SOYLENT-")
    assert invoice.status == Invoice.Status.PAID
    debit = invoice.attempts.get(sequence=1)
    assert debit.status == PaymentAttempt.Status.FAILED

    soylent = sign_in("demo2", "Soylent")
    soylent.goto(f"/invoices/{invoice.pk}/")
    soylent.screenshot(path=screenshots / "truth-timeline-soylent.png", full_page=True)
    first = soylent.locator(".timeline__entry").first
    expect(first).to_contain_text("Sandbox Bank •••• 4440 was declined")
    expect(first).not_to_contain_text("no other method was left to try")
    expect(first).to_contain_text("the next run tried Backup 1")
    started = first.locator("time[data-role=started]")
    outcome = first.locator("time[data-role=outcome]")
    assert abs(datetime.datetime.fromisoformat(started.get_attribute("datetime")) - debit.created_at) < SECOND
    assert (
        abs(datetime.datetime.fromisoformat(outcome.get_attribute("datetime")) - debit.completed_at) < SECOND
    )
    assert debit.completed_at - debit.created_at >= datetime.timedelta(minutes=3)
    expect(first).to_contain_text(re.compile(r"Started .+ · Declined .+"))


def test_separate_pay_nows_are_separate_groups(sign_in):
    initech = sign_in("demo2", "Initech")
    invoice = open_invoice(initech, "INITECH")
    for _ in range(2):
        choose(initech.get_by_label("Pay with"), "Visa •••• 0341")
        initech.get_by_role("button", name=re.compile("^Pay now")).click()
        expect(initech.locator(".flash").first).to_contain_text("declined")
    groups = initech.locator(".timeline__group")
    expect(groups).to_have_count(2)
    expect(groups.nth(0).locator(".timeline__entry")).to_have_count(1)
    expect(groups.nth(1).locator(".timeline__entry")).to_have_count(1)
    assert invoice.attempts.count() == 2


# 4. One word for pending, and no Pay now while it is ----------------------------------------------


def test_a_pending_debit_reads_the_same_everywhere(sign_in, screenshots):
    run_settlement()
    soylent = sign_in("demo2", "Soylent")
    invoice = Invoice.objects.get(number__startswith="DEMO-SOYLENT-")

    soylent.goto("/")
    expect(soylent.locator(".stat", has_text="Next due invoice").locator(".badge")).to_have_text("◔Pending")
    recent = soylent.locator("section", has_text="Recent invoices").locator("tr", has_text=invoice.number)
    expect(recent.locator(".badge")).to_have_text("◔Pending")

    soylent.goto("/invoices/")
    expect(soylent.locator("tr", has_text=invoice.number).locator(".badge")).to_have_text("◔Pending")

    soylent.goto(f"/invoices/{invoice.pk}/")
    soylent.screenshot(path=screenshots / "truth-pending-soylent.png", full_page=True)
    expect(soylent.locator("h1 .badge")).to_have_text("◔Pending")
    # No Pay now while the bank has not answered: why, and since when.
    expect(soylent.get_by_role("button", name=re.compile("^Pay now"))).to_have_count(0)
    expect(soylent.locator("#pay-heading")).to_have_count(0)
    waiting = soylent.locator("[data-awaiting]")
    expect(waiting).to_contain_text("Pay now is not available")
    expect(waiting).to_contain_text("Sandbox Bank •••• 4440")
    expect(waiting).to_contain_text(re.compile(r"waiting for the bank since \w+"))
    # The preview does not say it will try the account whose debit is pending.
    preview = soylent.locator(".plan__step", has_text="Sandbox Bank •••• 4440")
    expect(preview).not_to_contain_text("Will try")
    expect(preview).to_contain_text("Pending")
    # The next attempt is never a time already past.
    facts = soylent.locator(".facts")
    assert invoice.next_attempt_at <= timezone.now()
    expect(facts.locator("div", has_text="Next attempt").locator("dd")).to_have_text("Due now")
