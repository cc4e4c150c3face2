"""One member's changes within SECURITY_NOTICE_WINDOW_SECONDS make one security notice listing
each change in order, sent when the window closes: twelve reorders are one email, not twelve."""

import datetime
import re

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.utils import translation

from accounts.models import Membership
from notifications.models import SentEmail
from notifications.rendering import render_email
from notifications.services import notification_deliver_due
from payments.services import charge_order_set
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    MembershipFactory,
    PaymentMethodFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FIRST_CHANGE = datetime.datetime(2026, 11, 26, 9, 0, tzinfo=datetime.UTC)
WINDOW = datetime.timedelta(minutes=10)


@pytest.fixture
def account():
    return AccountFactory(name="Acme", billing_email="ap@acme.example")


@pytest.fixture
def owner(account):
    user = UserFactory(first_name="Olga", last_name="Owner", email="olga@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def billing_member(account):
    user = UserFactory(first_name="Bea", last_name="Baker", email="bea@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.BILLING)
    return user


@pytest.fixture
def methods(account):
    methods = [
        PaymentMethodFactory(account=account, brand="Visa", last4="4242"),
        PaymentMethodFactory(account=account, brand="Mastercard", last4="4444"),
        PaymentMethodFactory(account=account, brand="Amex", last4="0005"),
    ]
    for position, method in enumerate(methods, start=1):
        ChargeOrderEntryFactory(method=method, position=position)
    return methods


@pytest.fixture
def clock():
    with time_machine.travel(FIRST_CHANGE, tick=False) as traveller:
        yield traveller


def swap(account, actor, methods):
    """A reorder: the first two methods change places."""
    first, second, third = methods
    charge_order_set(account=account, actor=actor, method_ids=[second.pk, first.pk, third.pk])
    return [second, first, third]


def notices(mailoutbox):
    return [m for m in mailoutbox if m.subject.startswith("Security notice")]


def test_twelve_reorders_in_three_minutes_are_one_notice_listing_each(
    account, owner, billing_member, methods, clock, mailoutbox
):
    order = methods
    for _ in range(12):
        order = swap(account, billing_member, order)
        clock.shift(datetime.timedelta(seconds=15))  # the twelfth at 2:45, within three minutes
    assert notices(mailoutbox) == []

    clock.move_to(FIRST_CHANGE + WINDOW - datetime.timedelta(seconds=1))
    assert notification_deliver_due() == 0
    assert notices(mailoutbox) == []

    clock.move_to(FIRST_CHANGE + WINDOW)  # no later than the window after the first change
    assert notification_deliver_due() == 1
    [message] = notices(mailoutbox)
    assert message.to == [owner.email]
    assert message.subject == "Security notice: 12 changes to the payment settings of Acme"
    body = message.body
    assert "12 changes were made, in this order:" in body
    assert "Who: Bea Baker (bea@acme.example)" in body
    numbered = re.findall(
        r"^(\d+)\. The order in which your payment methods are charged changed\.$", body, re.M
    )
    assert numbered == [str(n) for n in range(1, 13)]
    # Each change keeps its own time: the first at 9:00, the last at 9:02:45.
    times = re.findall(r"When: (.+) \(UTC\)", body)
    assert (
        len(times) == 12 and times[0] == "Nov. 26, 2026, 9 a.m." and times[-1] == "Nov. 26, 2026, 9:02 a.m."
    )
    assert "If you did not expect these changes" in body
    html = message.alternatives[0].content
    assert html.count("<li ") == 12 and "Bea Baker" in html

    clock.shift(datetime.timedelta(minutes=5))
    assert notification_deliver_due() == 0  # sent once
    assert len(notices(mailoutbox)) == 1
    [email] = SentEmail.objects.filter(kind=SentEmail.Kind.SECURITY_NOTICE)
    assert email.status == SentEmail.Status.SENT and len(email.context["changes"]) == 12
    with translation.override("ja"):
        japanese = render_email(kind=email.kind, context=email.context, account_name="Acme")
    assert japanese.subject == "【セキュリティのお知らせ】Acme のお支払い設定が 12 件変更されました"
    assert "次の 12 件の変更が、この順に行われました" in japanese.text


def test_a_change_by_another_member_gets_its_own_notice(
    account, owner, billing_member, methods, clock, mailoutbox
):
    order = swap(account, billing_member, methods)
    clock.shift(datetime.timedelta(minutes=1))
    order = swap(account, owner, order)
    clock.shift(datetime.timedelta(minutes=1))
    swap(account, billing_member, order)

    clock.move_to(FIRST_CHANGE + WINDOW)
    assert notification_deliver_due() == 1  # Bea's, whose window closed; Olga's has a minute left
    clock.move_to(FIRST_CHANGE + datetime.timedelta(minutes=1) + WINDOW)
    assert notification_deliver_due() == 1
    bea, olga = notices(mailoutbox)
    assert "Who: Bea Baker (bea@acme.example)" in bea.body and "2 changes were made" in bea.body
    assert "Who: Olga Owner (olga@acme.example)" in olga.body
    assert olga.subject == "Security notice: the charge order of Acme changed"  # one change, as before


def test_a_change_after_the_window_starts_a_new_notice(
    account, owner, billing_member, methods, clock, mailoutbox
):
    order = swap(account, billing_member, methods)
    clock.move_to(FIRST_CHANGE + WINDOW)
    swap(account, billing_member, order)  # the window has closed, even though nothing was sent yet

    assert notification_deliver_due() == 1
    [first] = notices(mailoutbox)
    assert first.subject == "Security notice: the charge order of Acme changed"
    clock.move_to(FIRST_CHANGE + 2 * WINDOW)
    assert notification_deliver_due() == 1
    assert len(notices(mailoutbox)) == 2
    assert [len(e.context["changes"]) for e in SentEmail.objects.order_by("pk")] == [1, 1]


def test_a_change_rolled_back_is_not_reported(account, owner, billing_member, methods, clock, mailoutbox):
    order = swap(account, billing_member, methods)
    with pytest.raises(RuntimeError), transaction.atomic():
        swap(account, billing_member, order)
        raise RuntimeError("the request failed after the change")
    clock.move_to(FIRST_CHANGE + WINDOW)
    assert notification_deliver_due() == 1
    [message] = notices(mailoutbox)
    assert message.subject == "Security notice: the charge order of Acme changed"  # one change, not two


def test_an_email_whose_send_on_commit_never_ran_is_sent_by_the_run(
    account, owner, methods, settings, mailoutbox
):
    """Without a window a notice is sent on commit; had its process died first, the run sends it."""
    settings.SECURITY_NOTICE_WINDOW_SECONDS = 0
    swap(account, owner, methods)  # the test's transaction never commits: nothing was sent
    [email] = SentEmail.objects.filter(kind=SentEmail.Kind.SECURITY_NOTICE)
    assert email.status == SentEmail.Status.QUEUED and email.deliver_after is None
    assert notices(mailoutbox) == []

    call_command("send_notifications")
    call_command("send_notifications")
    assert len(notices(mailoutbox)) == 1


def test_without_a_window_each_change_is_sent_on_commit(
    account, owner, methods, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SECURITY_NOTICE_WINDOW_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        order = swap(account, owner, methods)
    with django_capture_on_commit_callbacks(execute=True):
        swap(account, owner, order)
    assert len(notices(mailoutbox)) == 2
