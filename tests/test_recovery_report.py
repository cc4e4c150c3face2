"""The recovery report: its figures against a scenario with known answers, settled by the real
engine; a constant number of queries whatever the period; the admin page, its CSV and the API."""

import csv
import datetime
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invoices.models import Invoice
from invoices.recovery import recovery_report
from tests import recovery_scenario
from tests.factories import StaffUserFactory, UserFactory
from tests.recovery_scenario import START, TODAY, day

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scenario():
    return recovery_scenario.scenario()


def test_the_scenario_settled_as_planned(scenario):
    paid, failed = scenario
    assert {name: invoice.status for name, invoice in paid.items()} == dict.fromkeys(
        paid, Invoice.Status.PAID
    )
    assert failed.status == Invoice.Status.PAST_DUE
    # The engine records the place that paid, which the report counts.
    assert [paid[name].paid_by_position for name in ("primary", "backup 1", "backup 2")] == [1, 2, 3]


def test_figures_match_the_known_answers(scenario):
    report = recovery_report(currency="USD", start=START, end=TODAY, as_of=TODAY)

    assert (report.recovered.count, report.recovered.amount_minor) == (2, 50_000)
    assert [(row.label, row.paid.count, row.paid.amount_minor) for row in report.by_position] == [
        ("Primary", 1, 10_000),
        ("Backup 1", 1, 20_000),
        ("Backup 2", 1, 30_000),
    ]
    assert (report.paid.count, report.paid.amount_minor) == (3, 60_000)
    assert (report.past_due.count, report.past_due.amount_minor) == (5, 50_000)
    assert (report.uncollectible.count, report.uncollectible.amount_minor) == (1, 5_000)
    assert (report.settled.count, report.settled.amount_minor) == (9, 115_000)
    assert (report.open.count, report.voided.count) == (1, 1)
    assert [(row.label, row.past_due.count, row.past_due.amount_minor) for row in report.ageing] == [
        ("0–7 days", 2, 41_000),
        ("8–30 days", 1, 2_000),
        ("31–60 days", 1, 3_000),
        ("Over 60 days", 1, 4_000),
    ]
    assert [(row.code, row.count) for row in report.declines] == [
        ("generic_decline", 2),
        ("insufficient_funds", 1),
        ("lost_card", 1),
    ]
    weekly = {row.week: row.recovered_minor for row in report.weekly}
    monday = lambda d: d - datetime.timedelta(days=d.weekday())  # noqa: E731
    assert weekly[monday(day(20))] == 20_000 and weekly[monday(day(5))] == 30_000
    assert sum(weekly.values()) == 50_000
    # Every week of the period is a point, empty ones at zero.
    assert min(weekly) == monday(START) and max(weekly) == monday(TODAY)
    assert len(weekly) == (monday(TODAY) - monday(START)).days // 7 + 1


def test_a_narrower_period_or_another_currency_counts_only_its_invoices(scenario):
    last_week = recovery_report(currency="USD", start=day(7), end=TODAY, as_of=TODAY)
    assert [(row.position, row.paid.count) for row in last_week.by_position] == [(1, 0), (2, 0), (3, 1)]
    assert last_week.recovered.amount_minor == 30_000
    assert [row.past_due.count for row in last_week.ageing] == [2, 0, 0, 0]

    euros = recovery_report(currency="EUR", start=START, end=TODAY, as_of=TODAY)
    assert (euros.recovered.count, euros.recovered.amount_minor) == (1, 90_000)
    assert [(row.code, row.count) for row in euros.declines] == [("generic_decline", 1)]


def test_queries_stay_the_same_whatever_the_period(scenario):
    counts = []
    for start in (day(7), START, TODAY - datetime.timedelta(days=3 * 365)):
        with CaptureQueriesContext(connection) as queries:
            recovery_report(currency="USD", start=start, end=TODAY, as_of=TODAY)
        counts.append(len(queries))
    assert counts == [counts[0]] * 3 and counts[0] <= 2


def test_nothing_to_report_is_all_zeros():
    report = recovery_report(currency="JPY", start=START, end=TODAY, as_of=TODAY)
    assert report.recovered.count == 0 and report.settled.amount_minor == 0
    assert [row.position for row in report.by_position] == [1]
    assert all(row.recovered_minor == 0 for row in report.weekly)


# The admin page --------------------------------------------------------------------------------


@pytest.fixture
def support(client):
    """A support agent signed in; the group as accounts 0002 makes it (these tests flush the data)."""
    client.force_login(recovery_scenario.support_agent())
    return client


def _query(start=START, end=TODAY, currency="USD", **extra):
    return {"currency": currency, "start": start.isoformat(), "end": end.isoformat(), **extra}


def test_support_reads_the_report_with_charts_and_their_tables(support, scenario):
    client = support
    page = client.get("/admin/invoices/invoice/recovery/", _query())
    assert page.status_code == 200
    html = page.content.decode()
    assert "Revenue recovered by backups" in html and "$500.00" in html
    # Two charts, drawn on the server, each with a title and a description for assistive technology.
    svgs = re.findall(r'<svg [^>]*class="recovery-chart".*?</svg>', html, re.S)
    assert len(svgs) == 2
    assert all('role="img"' in svg and "<title" in svg and "<desc" in svg for svg in svgs)
    assert svgs[0].count("<rect") == 3  # primary, backup 1, backup 2
    assert "Backup 2: 1" in svgs[0]
    # No script anywhere on the page but the admin's own files, so the CSP needs no exception.
    assert "<script>" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "Content-Security-Policy" in page.headers
    # The same figures in tables beside the charts.
    assert re.search(
        r"<th scope=\"row\">Backup 2</th><td class=\"number\">1</td><td class=\"number\">\$300\.00</td>", html
    )
    # The invoice list leads here.
    assert "/admin/invoices/invoice/recovery/" in client.get("/admin/invoices/invoice/").content.decode()


def test_the_report_downloads_as_csv_with_the_same_figures(support, scenario):
    client = support
    response = client.get("/admin/invoices/invoice/recovery/", _query(format="csv"))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    by_item = {(row[0], row[1]): row[2:] for row in rows[1:]}
    assert by_item[("Summary", "Recovered by backups")] == ["2", "500.00", "USD"]
    assert by_item[("Paid by", "Backup 2")] == ["1", "300.00", "USD"]
    assert by_item[("Past due for", "Over 60 days")] == ["1", "40.00", "USD"]
    assert by_item[("Declines", "generic_decline")][0] == "2"


def test_a_bad_period_is_a_field_error_not_a_crash(support, scenario):
    client = support
    page = client.get("/admin/invoices/invoice/recovery/", _query(start=TODAY, end=day(10)))
    assert page.status_code == 200
    assert "The period must end on or after the day it starts." in page.content.decode()
    assert page.context["report"] is None


def test_customers_and_signed_out_visitors_cannot_see_it(client):
    assert client.get("/admin/invoices/invoice/recovery/").status_code == 302  # to the admin's sign-in
    client.force_login(UserFactory())
    assert client.get("/admin/invoices/invoice/recovery/").status_code == 302


# The API ---------------------------------------------------------------------------------------


def test_the_api_gives_the_same_figures_to_staff(client, scenario):
    client.force_login(StaffUserFactory())
    body = client.get("/api/staff/recovery/", _query()).json()
    assert body["recovered"] == {"invoices": 2, "amount_minor": 50_000}
    assert body["settled"] == {"invoices": 9, "amount_minor": 115_000}
    assert [(p["position"], p["label"], p["invoices"]) for p in body["by_position"]] == [
        (1, "Primary", 1),
        (2, "Backup 1", 1),
        (3, "Backup 2", 1),
    ]
    assert body["ageing"][-1] == {"from_days": 61, "to_days": None, "invoices": 1, "amount_minor": 4_000}
    assert body["declines"][0] == {"code": "generic_decline", "count": 2}
    assert sum(week["recovered_minor"] for week in body["weekly"]) == 50_000


def test_the_api_refuses_non_staff_and_bad_periods(client):
    client.force_login(UserFactory())
    assert client.get("/api/staff/recovery/", _query()).status_code == 403
    client.force_login(StaffUserFactory())
    refused = client.get("/api/staff/recovery/", _query(start=TODAY, end=day(1)))
    assert refused.status_code == 400 and "end" in refused.json()["errors"]
    assert client.get("/api/staff/recovery/", {"currency": "usd"}).status_code == 400
