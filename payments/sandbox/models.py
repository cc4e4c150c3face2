"""The sandbox processor's own records, in its own database ("sandbox"), as a remote gateway keeps them.

Nothing here holds a card number, IBAN or bank account number: a token maps to a behaviour.
"""

from django.db import models
from django.db.models import Q

from payments.gateways.base import ChargeStatus, LedgerEntry


class SandboxCustomer(models.Model):
    """The sandbox's customer for one of the product's accounts (as a processor keeps customers)."""

    reference = models.CharField(max_length=64, unique=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.reference


class SandboxToken(models.Model):
    """What a token behaves like when charged (a name from the gateway's table of test numbers),
    with what may be shown of it and the customer it was saved to."""

    class Kind(models.TextChoices):
        CARD = "card", "Card"
        SEPA_DEBIT = "sepa_debit", "SEPA Direct Debit"
        ACH_DEBIT = "ach_debit", "US bank account (ACH)"

    token = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind)
    behaviour = models.CharField(max_length=32)
    customer = models.CharField(max_length=64, blank=True, db_index=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    brand = models.CharField(max_length=32, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    bank_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.token


class SandboxCharge(models.Model):
    """One charge in the gateway's ledger. The unique idempotency key is what makes a retry safe."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        PENDING = "pending"

    reference = models.CharField(max_length=64, unique=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    token = models.CharField(max_length=64, db_index=True)
    customer = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status)
    decline_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A bank debit stays pending until then; the first look at it afterwards settles it.
    clears_at = models.DateTimeField(null=True, blank=True)
    # When the signed event announcing a bank debit's outcome was answered with a 2xx.
    announced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="sandbox_charge_amount_positive"),
            models.CheckConstraint(
                condition=Q(status="failed") | Q(decline_code=""), name="sandbox_charge_code_only_if_failed"
            ),
        ]
        indexes = [
            models.Index(fields=["clears_at"], condition=Q(status="pending"), name="sandbox_charge_clearing"),
            models.Index(
                fields=["id"],
                condition=Q(announced_at__isnull=True, clears_at__isnull=False),
                name="sandbox_charge_unannounced",
            ),
            # list_charges pages through in this order, from a cursor.
            models.Index(fields=["created_at", "id"], name="sandbox_charge_created"),
        ]

    def __str__(self):
        return self.reference

    def as_ledger_entry(self) -> LedgerEntry:
        return LedgerEntry(
            reference=self.reference,
            idempotency_key=self.idempotency_key,
            token=self.token,
            amount_minor=self.amount_minor,
            currency=self.currency,
            status=ChargeStatus(self.status),
            decline_code=self.decline_code,
            created_at=self.created_at,
            customer=self.customer,
            metadata=dict(self.metadata or {}),
        )


class SandboxRefund(models.Model):
    reference = models.CharField(max_length=64, unique=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    charge = models.ForeignKey(SandboxCharge, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="sandbox_refund_amount_positive"),
        ]

    def __str__(self):
        return self.reference


class SandboxFault(models.Model):
    """A once-only fault that has fired for an idempotency key.

    Kept in the database, not in memory, so that it fires once across every process and host; the
    unique key makes "fire only the first time" a single insert that only one caller can win.
    """

    idempotency_key = models.CharField(max_length=255, unique=True)
    behaviour = models.CharField(max_length=32)
    fired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"{self.behaviour} for {self.idempotency_key}"
