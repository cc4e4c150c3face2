import calendar
import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Account

from .declines import decline_fixed_by_update
from .ranks import position_label


class PaymentMethodQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=PaymentMethod.Status.ACTIVE)


class PaymentMethod(models.Model):
    """A tokenised card or bank account. Only the gateway's token and display data are kept."""

    class Kind(models.TextChoices):
        CARD = "card", _("Card")
        SEPA_DEBIT = "sepa_debit", _("SEPA Direct Debit")
        ACH_DEBIT = "ach_debit", _("US bank account (ACH)")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REMOVED = "removed", _("Removed")

    # Bank debits settle in one currency only; cards pay any currency the gateway accepts.
    KIND_CURRENCIES = {Kind.SEPA_DEBIT: {"EUR"}, Kind.ACH_DEBIT: {"USD"}}

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payment_methods")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    gateway = models.CharField(_("gateway"), max_length=32)
    token = models.CharField(_("gateway token"), max_length=128)
    fingerprint = models.CharField(_("fingerprint"), max_length=64, db_index=True)
    brand = models.CharField(_("brand"), max_length=32, blank=True)
    last4 = models.CharField(_("last 4"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"), null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(_("expiry year"), null=True, blank=True)
    bank_name = models.CharField(_("bank name"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.ACTIVE)
    # Set by a hard decline (lost card, closed account …); cleared when the customer updates it.
    blocked_at = models.DateTimeField(_("blocked since"), null=True, blank=True)
    blocked_reason = models.CharField(_("blocked because"), max_length=64, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("added"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now_add=True)
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)

    objects = PaymentMethodQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment method")
        verbose_name_plural = _("payment methods")
        ordering = ["account_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "token"], name="method_unique_token"),
            models.CheckConstraint(condition=Q(last4__regex=r"^[0-9]{4}$"), name="method_last4_digits"),
            models.CheckConstraint(
                condition=Q(exp_month__isnull=True) | Q(exp_month__gte=1, exp_month__lte=12),
                name="method_exp_month_valid",
            ),
            models.CheckConstraint(
                condition=~Q(kind="card") | Q(exp_month__isnull=False, exp_year__isnull=False),
                name="method_card_has_expiry",
            ),
            models.CheckConstraint(
                condition=Q(status="active", removed_at__isnull=True)
                | Q(status="removed", removed_at__isnull=False),
                name="method_removed_at_matches_status",
            ),
        ]

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        if self.kind == self.Kind.CARD:
            return f"{self.brand or _('Card')} •••• {self.last4}"
        return f"{self.bank_name or self.get_kind_display()} •••• {self.last4}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def needs_replacing(self) -> bool:
        """Blocked by a hard decline that no update cures (a card reported lost or stolen, a closed
        bank account …): only a new method will pay."""
        return self.blocked_at is not None and not decline_fixed_by_update(self.blocked_reason)

    def expires_on(self) -> datetime.date | None:
        """Last day the method can be charged; cards are valid through the end of the expiry month."""
        if not (self.exp_month and self.exp_year):
            return None
        return datetime.date(
            self.exp_year, self.exp_month, calendar.monthrange(self.exp_year, self.exp_month)[1]
        )

    def is_expired_on(self, day: datetime.date) -> bool:
        expires = self.expires_on()
        return expires is not None and day > expires

    def can_pay_currency(self, currency: str) -> bool:
        return self.kind_can_pay_currency(self.kind, currency)

    @classmethod
    def kind_can_pay_currency(cls, kind: str, currency: str) -> bool:
        """The rule settlement matches methods to invoices by, for a method not kept yet."""
        allowed = cls.KIND_CURRENCIES.get(kind)
        return allowed is None or currency.upper() in allowed


class ChargeOrderEntry(models.Model):
    """One rank in an account's charge order: position 1 is the primary, 2.. are backups 1..N."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="charge_order")
    # One-to-one: a method appears at most once in any charge order.
    method = models.OneToOneField(PaymentMethod, on_delete=models.CASCADE, related_name="rank")
    position = models.PositiveSmallIntegerField(_("position"))

    class Meta:
        verbose_name = _("charge order entry")
        verbose_name_plural = _("charge order entries")
        ordering = ["account_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["account", "position"], name="charge_order_unique_position"),
            models.CheckConstraint(condition=Q(position__gte=1), name="charge_order_position_positive"),
        ]

    def __str__(self):
        return f"{self.account_id} #{self.position}: {self.method_id}"

    @property
    def is_primary(self) -> bool:
        return self.position == 1

    @property
    def position_label(self) -> str:
        return position_label(self.position)


class GatewayCustomer(models.Model):
    """The payment processor's customer for an account: methods are saved to it, charges made for it.

    One per account and gateway, created the first time it is needed (payments.customers)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="gateway_customers")
    gateway = models.CharField(_("gateway"), max_length=32)
    reference = models.CharField(_("gateway reference"), max_length=128)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("gateway customer")
        verbose_name_plural = _("gateway customers")
        ordering = ["account_id", "gateway"]
        constraints = [
            models.UniqueConstraint(fields=["account", "gateway"], name="gateway_customer_one_per_account"),
            models.UniqueConstraint(fields=["gateway", "reference"], name="gateway_customer_reference"),
        ]

    def __str__(self):
        return f"{self.gateway}:{self.reference}"
