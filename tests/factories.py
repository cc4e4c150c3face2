"""factory_boy factories for every model."""

import datetime

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Account, AuditEvent, Membership, Profile
from invoices.models import Invoice, PaymentAttempt, SettlementRun
from notifications.models import SentEmail
from payments.models import ChargeOrderEntry, PaymentMethod


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "password")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    user = factory.SubFactory(UserFactory)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    billing_email = factory.Sequence(lambda n: f"billing{n}@customer.example")
    currency = "USD"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    """A card record as tokenisation would leave it (the token is opaque here)."""

    class Meta:
        model = PaymentMethod

    account = factory.SubFactory(AccountFactory)
    kind = PaymentMethod.Kind.CARD
    gateway = "sandbox"
    token = factory.Sequence(lambda n: f"tok_test_{n:08d}")
    fingerprint = factory.Sequence(lambda n: f"fp_{n:08d}")
    brand = "Visa"
    last4 = "4242"
    exp_month = 12
    exp_year = factory.LazyFunction(lambda: timezone.now().year + 3)


class ChargeOrderEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChargeOrderEntry

    method = factory.SubFactory(PaymentMethodFactory)
    account = factory.SelfAttribute("method.account")
    position = 1


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    account = factory.SubFactory(AccountFactory)
    number = factory.Sequence(lambda n: f"INV-{n:06d}")
    currency = factory.SelfAttribute("account.currency")
    amount_minor = 12_500
    issued_on = factory.LazyFunction(lambda: timezone.localdate() - datetime.timedelta(days=14))
    due_on = factory.LazyFunction(timezone.localdate)
    next_attempt_at = factory.LazyFunction(timezone.now)


class SettlementRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SettlementRun

    host = "test-host"
    as_of = factory.LazyFunction(timezone.now)


class PaymentAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentAttempt

    invoice = factory.SubFactory(InvoiceFactory)
    sequence = factory.Sequence(lambda n: n + 1)
    method = factory.SubFactory(PaymentMethodFactory, account=factory.SelfAttribute("..invoice.account"))
    position = 1
    amount_minor = factory.SelfAttribute("invoice.amount_minor")
    currency = factory.SelfAttribute("invoice.currency")
    status = PaymentAttempt.Status.FAILED
    idempotency_key = factory.LazyAttribute(lambda a: f"test:{a.invoice.number}:{a.sequence}")
    decline_code = "generic_decline"
    decline_class = PaymentAttempt.DeclineClass.SOFT


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    account = factory.SubFactory(AccountFactory)
    actor_label = "test"
    action = AuditEvent.Action.ORDER_CHANGED


class SentEmailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SentEmail

    account = factory.SubFactory(AccountFactory)
    kind = SentEmail.Kind.SECURITY_NOTICE
    event_key = factory.Sequence(lambda n: f"test-event-{n}")
    recipients = factory.LazyAttribute(lambda e: [e.account.billing_email])
