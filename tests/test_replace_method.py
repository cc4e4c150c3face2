"""Replace this card: after a hard decline no update cures, the new card takes the old one's place."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership
from notifications.models import SentEmail
from payments.models import PaymentMethod
from payments.services import charge_order_ids
from tests.factories import MembershipFactory
from tests.utils import GENERIC_DECLINE, LOST_CARD, SUCCEEDS, add_card

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(membership.user)
    return membership


def hard_decline(method, code):
    # As the settlement cascade leaves a method after a hard decline.
    PaymentMethod.objects.filter(pk=method.pk).update(blocked_at=timezone.now(), blocked_reason=code)
    method.refresh_from_db()
    return method


@pytest.fixture
def order(owner):
    account = owner.account
    primary = add_card(account, SUCCEEDS)
    lost = hard_decline(add_card(account, LOST_CARD), "lost_card")
    last = add_card(account, GENERIC_DECLINE)
    return primary, lost, last


def card_of(body: str, method) -> str:
    start = body.index(f'id="method-{method.pk}"')
    return body[start : body.index("</li>", start)]


def test_a_lost_card_says_what_happened_and_offers_replace_not_update_expiry(client, order):
    _primary, lost, last = order
    body = client.get(reverse("payment_methods")).content.decode()
    lost_card = " ".join(card_of(body, lost).split())
    assert (
        "Declined: the card was reported lost. It will not be charged again; replace it with a new one."
        in (lost_card)
    )
    assert f'href="{reverse("payment_method_add", args=["card"])}?replace={lost.pk}"' in lost_card
    assert "Replace this card" in lost_card and "Update expiry" not in lost_card
    assert "Replace this card" not in card_of(body, last)


def test_an_expired_card_decline_still_offers_update_expiry(client, owner):
    expired = hard_decline(add_card(owner.account, SUCCEEDS), "expired_card")
    body = card_of(client.get(reverse("payment_methods")).content.decode(), expired)
    assert "Update expiry" in body and "Replace this card" not in body


def test_the_new_card_takes_the_old_ones_place_audited_with_one_security_notice(
    client, owner, order, django_capture_on_commit_callbacks
):
    primary, lost, last = order
    url = f"{reverse('payment_method_add', args=['card'])}?replace={lost.pk}"
    page = " ".join(client.get(url).content.decode().split())
    assert "Replace Visa •••• 9987" in page
    assert "The new method takes the place of Visa •••• 9987 as your <strong>Backup 1</strong>." in page
    notices_before = SentEmail.objects.filter(kind=SentEmail.Kind.SECURITY_NOTICE).count()
    events_before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("payment_method_add", args=["card"]),
            {"number": "5555 5555 5555 4444", "expiry": "12/34", "cvc": "123", "replace": str(lost.pk)},
            follow=True,
        )
    new = PaymentMethod.objects.get(account=owner.account, last4="4444")
    assert charge_order_ids(account=owner.account) == [primary.pk, new.pk, last.pk]
    lost.refresh_from_db()
    assert lost.is_active  # out of the order, still on file
    assert (
        "Mastercard •••• 4444 took the place of Visa •••• 9987 as Backup 1. Visa •••• 9987 stays on file, "
        "out of the charge order." in response.content.decode()
    )
    events = AuditEvent.objects.order_by("pk")[events_before:]
    assert [e.action for e in events] == ["method.added", "charge_order.changed"]
    assert events[1].before == {"order": [primary.pk, lost.pk, last.pk]}
    assert events[1].after == {"order": [primary.pk, new.pk, last.pk], "replaced": lost.pk}
    assert SentEmail.objects.filter(kind=SentEmail.Kind.SECURITY_NOTICE).count() == notices_before + 1


def test_replacing_a_method_off_the_order_adds_the_new_one_as_usual(client, owner):
    spare = hard_decline(add_card(owner.account, LOST_CARD, in_order=False), "lost_card")
    client.post(
        reverse("payment_method_add", args=["card"]),
        {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123", "replace": str(spare.pk)},
    )
    new = PaymentMethod.objects.get(account=owner.account, last4="4242")
    assert charge_order_ids(account=owner.account) == []  # the box was left unticked
    assert new.is_active and spare.is_active


def test_another_accounts_method_cannot_be_replaced(client, owner):
    other = MembershipFactory(role=Membership.Role.OWNER)
    theirs = add_card(other.account, LOST_CARD)
    url = reverse("payment_method_add", args=["card"])
    assert client.get(f"{url}?replace={theirs.pk}").status_code == 404
    response = client.post(
        url, {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123", "replace": str(theirs.pk)}
    )
    assert response.status_code == 404
    assert charge_order_ids(account=other.account) == [theirs.pk]
    assert not PaymentMethod.objects.filter(account=owner.account).exists()
