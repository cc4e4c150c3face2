"""Notification services: who receives an email, in which language, once per event, after commit."""

import pytest
from django.utils import translation

from accounts.models import Membership
from notifications import rendering, services
from notifications.models import SentEmail
from notifications.services import notification_deliver, notification_queue, recipients_for
from tests.factories import AccountFactory, MembershipFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db
Kind = SentEmail.Kind
Role = Membership.Role

CONTEXT = {
    "invoice_number": "INV-2026-0042",
    "invoice_id": 42,
    "amount_minor": 1_250_000,
    "currency": "JPY",
}


def member(account, role=Role.OWNER, *, language=None, time_zone=None, opt_out=False, **user):
    membership = MembershipFactory(
        account=account, role=role, email_opt_out=opt_out, user=UserFactory(**user)
    )
    if language is not None or time_zone is not None:
        ProfileFactory(user=membership.user, language=language or "", time_zone=time_zone or "")
    return membership.user


@pytest.fixture
def account():
    return AccountFactory(name="Smith & Co", billing_email="ap@smith.example")


def test_owners_billing_members_and_the_billing_address_receive_payment_emails(account):
    owner = member(account, Role.OWNER)
    billing = member(account, Role.BILLING)
    member(account, Role.VIEWER)
    member(account, Role.OWNER, email="")
    assert recipients_for(account=account, kind=Kind.BACKUP_CHARGED) == {
        account.billing_email: "en",
        billing.email: "en",
        owner.email: "en",
    }


def test_security_notices_go_to_the_owners_only(account):
    owner = member(account, Role.OWNER)
    member(account, Role.BILLING)
    recipients = recipients_for(account=account, kind=Kind.SECURITY_NOTICE, roles=services.OWNER_ROLES)
    assert recipients == {owner.email: "en"}


def test_a_deactivated_user_receives_nothing(account):
    member(account, Role.OWNER, is_active=False)
    assert recipients_for(account=account, kind=Kind.ALL_FAILED) == {account.billing_email: "en"}


@pytest.mark.parametrize("kind", list(Kind))
def test_opting_out_leaves_only_security_and_failed_payment_emails(account, kind):
    opted_out = member(account, Role.OWNER, opt_out=True)
    other = member(account, Role.OWNER)
    recipients = recipients_for(account=account, kind=kind)
    assert other.email in recipients
    assert (opted_out.email in recipients) is (kind in SentEmail.ALWAYS_SENT)


def test_an_opted_out_member_whose_address_is_the_billing_address_is_not_sent_optional_email(account):
    member(account, Role.BILLING, opt_out=True, email=account.billing_email)
    assert recipients_for(account=account, kind=Kind.METHOD_EXPIRING) == {}
    assert recipients_for(account=account, kind=Kind.ALL_FAILED) == {account.billing_email: "en"}


def test_each_recipient_has_their_own_language(account, settings):
    japanese = member(account, Role.OWNER, language="ja")
    english = member(account, Role.OWNER, language="en")
    no_preference = member(account, Role.BILLING, language="")
    unknown = member(account, Role.BILLING, language="xx")
    no_profile = member(account, Role.BILLING)
    # The billing address speaks the language of the member who uses it, if one does.
    member(account, Role.VIEWER, language="ja", email=account.billing_email)
    recipients = recipients_for(account=account, kind=Kind.BACKUP_CHARGED)
    assert recipients == {
        japanese.email: "ja",
        english.email: "en",
        no_preference.email: "en",
        unknown.email: "en",
        no_profile.email: "en",
        account.billing_email: "ja",
    }
    settings.LANGUAGE_CODE = "ja"
    assert recipients_for(account=account, kind=Kind.BACKUP_CHARGED)[no_profile.email] == "ja"


def test_an_event_is_recorded_once_and_sent_on_commit(
    account, mailoutbox, django_capture_on_commit_callbacks
):
    member(account, Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = notification_queue(
            account=account, kind=Kind.BACKUP_CHARGED, event_key="evt:1", context=CONTEXT
        )
        assert mailoutbox == []  # not before the transaction commits
        again = notification_queue(
            account=account, kind=Kind.BACKUP_CHARGED, event_key="evt:1", context=CONTEXT
        )
    assert first is not None and again is None
    assert len(callbacks) == 1
    assert SentEmail.objects.filter(event_key="evt:1").count() == 1
    assert len(mailoutbox) == 1
    first.refresh_from_db()
    assert first.status == SentEmail.Status.SENT and first.sent_at is not None
    assert first.subject == "Invoice INV-2026-0042 was paid with a backup payment method"


def test_no_recipients_records_nothing(account):
    assert notification_queue(account=account, kind=Kind.SECURITY_NOTICE, event_key="e", context={}) is None
    assert not SentEmail.objects.exists()


def test_one_record_per_event_and_one_message_per_language(
    account, mailoutbox, django_capture_on_commit_callbacks
):
    ja_one = member(account, Role.OWNER, language="ja")
    ja_two = member(account, Role.BILLING, language="ja")
    en = member(account, Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        email = notification_queue(
            account=account,
            kind=Kind.BACKUP_CHARGED,
            event_key="evt:2",
            context={
                **CONTEXT,
                "charged": {"method": "Mastercard •••• 4444", "position": 2},
                "failures": [{"method": "Visa •••• 0002", "position": 1, "decline_code": "lost_card"}],
            },
        )
    email.refresh_from_db()
    assert email.recipients == sorted([ja_one.email, ja_two.email, en.email, account.billing_email])
    assert email.languages[ja_one.email] == "ja" and email.languages[en.email] == "en"
    assert SentEmail.objects.count() == 1
    # The site's language first, then the others; nobody sees another group's copy.
    english, japanese = mailoutbox
    assert sorted(english.to) == sorted([en.email, account.billing_email])
    assert sorted(japanese.to) == sorted([ja_one.email, ja_two.email])
    for message, lang, yen in ((english, "en", "¥1,250,000"), (japanese, "ja", "￥1,250,000")):
        [(html, mimetype)] = message.alternatives
        assert mimetype == "text/html"
        assert f'lang="{lang}"' in html
        assert yen in message.body and yen in html
        assert "Mastercard •••• 4444" in message.body


def test_every_group_is_rendered_under_its_language(account, mailoutbox, monkeypatch):
    member(account, Role.OWNER, language="ja")
    member(account, Role.OWNER, language="en")
    seen = []
    real = rendering.render_email

    def spy(**kwargs):
        seen.append(translation.get_language())
        return real(**kwargs)

    monkeypatch.setattr(rendering, "render_email", spy)
    email = queued_email(account, Kind.ACCOUNT_SUSPENDED)
    assert notification_deliver(email_id=email.pk)
    assert seen == ["en", "ja"]


def test_times_are_shown_in_each_recipients_time_zone(
    account, mailoutbox, settings, django_capture_on_commit_callbacks
):
    """A security notice says when the change happened in the reader's own time zone (Settings);
    readers without one, and the billing address, get the site's."""
    settings.TIME_ZONE = "UTC"
    tokyo = member(account, Role.OWNER, time_zone="Asia/Tokyo", email="tokyo@smith.example")
    paris = member(account, Role.OWNER, time_zone="Europe/Paris", email="paris@smith.example")
    site = member(account, Role.OWNER, email="site@smith.example")
    with django_capture_on_commit_callbacks(execute=True):
        email = notification_queue(
            account=account,
            kind=Kind.SECURITY_NOTICE,
            event_key="evt:tz",
            context={
                "actor": None,
                "changes": [
                    {
                        "action": "method.removed",
                        "method": "Visa •••• 4242",
                        "order_changed": False,
                        "occurred_at": "2026-11-26T04:50:00+00:00",
                        "ip_address": "",
                        "via": "",
                    }
                ],
            },
            recipients={tokyo.email: "en", paris.email: "en", site.email: "en"},
        )
    email.refresh_from_db()
    assert email.time_zones == {tokyo.email: "Asia/Tokyo", paris.email: "Europe/Paris"}
    by_reader = {message.to[0]: message.body for message in mailoutbox}
    assert len(mailoutbox) == 3 and all(len(message.to) == 1 for message in mailoutbox)
    assert "1:50 p.m. (JST)" in by_reader[tokyo.email]
    assert "5:50 a.m. (CET)" in by_reader[paris.email]
    assert "4:50 a.m. (UTC)" in by_reader[site.email]


def queued_email(account, kind, **fields):
    recipients = recipients_for(account=account, kind=kind)
    return SentEmail.objects.create(
        account=account,
        kind=kind,
        event_key=f"test:{kind}",
        recipients=sorted(recipients),
        languages=recipients,
        context=CONTEXT,
        **fields,
    )


def test_an_email_is_delivered_once(account, mailoutbox):
    member(account, Role.OWNER)
    email = queued_email(account, Kind.ACCOUNT_SUSPENDED)
    assert notification_deliver(email_id=email.pk) is True
    assert notification_deliver(email_id=email.pk) is False
    assert len(mailoutbox) == 1


def test_a_recipient_without_a_recorded_language_gets_the_default(account, mailoutbox):
    email = queued_email(account, Kind.ACCOUNT_SUSPENDED, status=SentEmail.Status.QUEUED)
    SentEmail.objects.filter(pk=email.pk).update(languages={})
    assert notification_deliver(email_id=email.pk)
    assert 'lang="en"' in mailoutbox[0].alternatives[0].content


def test_a_failed_send_is_recorded_and_not_retried_blindly(account, mailoutbox, monkeypatch):
    member(account, Role.OWNER)
    email = queued_email(account, Kind.ACCOUNT_SUSPENDED)

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    assert notification_deliver(email_id=email.pk) is False
    email.refresh_from_db()
    assert email.status == SentEmail.Status.FAILED
    assert "smtp down" in email.error
    assert notification_deliver(email_id=email.pk) is False


def test_a_template_error_fails_the_email_not_the_caller(account, mailoutbox):
    member(account, Role.OWNER)
    email = queued_email(account, Kind.ACCOUNT_SUSPENDED)
    SentEmail.objects.filter(pk=email.pk).update(kind="no_such_template")
    assert notification_deliver(email_id=email.pk) is False
    email.refresh_from_db()
    assert email.status == SentEmail.Status.FAILED and email.error
    assert mailoutbox == []
