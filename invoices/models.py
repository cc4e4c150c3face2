from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from payments.models import PaymentMethod


class InvoiceQuerySet(models.QuerySet):
    def collectable(self):
        return self.filter(status__in=Invoice.COLLECTABLE)

    def with_in_flight(self):
        """Each invoice's ``in_flight``: an attempt of it awaits its outcome (a bank debit clearing,
        a charge the gateway has not confirmed). Every page shows such an invoice as Pending."""
        return self.annotate(
            in_flight=models.Exists(
                PaymentAttempt.objects.filter(
                    invoice=models.OuterRef("pk"), status__in=PaymentAttempt.UNRESOLVED
                )
            )
        )


class Invoice(models.Model):
    """An amount owed by an account, in integer minor units of its currency."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PAST_DUE = "past_due", _("Past due")
        PAID = "paid", _("Paid")
        UNCOLLECTIBLE = "uncollectible", _("Uncollectible")
        VOID = "void", _("Void")

    COLLECTABLE = (Status.OPEN, Status.PAST_DUE)

    # Its index is the first column of invoice_account_status.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices", db_index=False)
    number = models.CharField(_("number"), max_length=64, unique=True)
    currency = models.CharField(_("currency"), max_length=3)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    description = models.CharField(_("description"), max_length=300, blank=True)
    issued_on = models.DateField(_("issued"))
    due_on = models.DateField(_("due"))
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.OPEN)

    # Settlement state.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    first_failed_at = models.DateTimeField(_("first failed"), null=True, blank=True)
    retry_round = models.PositiveSmallIntegerField(_("retry round"), default=0)
    # The lease: which worker holds the invoice and until when. Writes after a gateway call are
    # fenced on lease_token so a worker that stalls past its lease changes nothing.
    lease_token = models.CharField(_("lease token"), max_length=64, blank=True, default="")
    lease_owner = models.CharField(_("leased by"), max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)

    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    paid_by_attempt = models.OneToOneField(
        "PaymentAttempt", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    paid_by_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    paid_by_backup = models.BooleanField(_("paid by a backup"), default=False)
    # The paying method's place in the charge order (1 = primary), or none when Pay now charged a
    # method the member chose: what the recovery report counts, without a join to the attempts.
    paid_by_position = models.PositiveSmallIntegerField(_("paid at rank"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-due_on", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="invoice_currency_iso4217"
            ),
            models.CheckConstraint(
                condition=Q(due_on__gte=models.F("issued_on")), name="invoice_due_after_issue"
            ),
            models.CheckConstraint(
                condition=~Q(status="paid")
                | Q(paid_at__isnull=False, paid_by_attempt__isnull=False, paid_by_method__isnull=False),
                name="invoice_paid_records_how",
            ),
        ]
        indexes = [
            # The settlement run's due scan touches only collectable invoices.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="invoice_due_scan",
                condition=Q(status__in=["open", "past_due"]),
            ),
            models.Index(fields=["account", "status", "-due_on"], name="invoice_account_status"),
            # The recovery report reads a currency's invoices due in a period.
            models.Index(fields=["currency", "due_on"], name="invoice_recovery_report"),
        ]

    def __str__(self):
        return self.number

    @property
    def is_collectable(self) -> bool:
        return self.status in self.COLLECTABLE


class PaymentAttempt(models.Model):
    """One step of settling an invoice: a charge of one method, or a method skipped with its reason.

    A charge attempt is written and committed with status ``started`` before the gateway is
    called, under a deterministic idempotency key, so a crash at any point leaves a row that the
    next run resolves with the gateway instead of charging again.
    """

    class Status(models.TextChoices):
        STARTED = "started", _("Started")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Declined")
        PENDING = "pending", _("Pending")
        UNKNOWN = "unknown", _("Unknown")
        # The customer must authenticate on-session; the cascade moves on to the next method.
        REQUIRES_ACTION = "requires_action", _("Needs authentication")
        # Never charged: closed after the gateway confirmed it has no such charge.
        CANCELED = "canceled", _("Canceled")
        SKIPPED = "skipped", _("Skipped")

    UNRESOLVED = (Status.STARTED, Status.PENDING, Status.UNKNOWN)

    class DeclineClass(models.TextChoices):
        HARD = "hard", _("Hard")
        SOFT = "soft", _("Soft")

    class SkipReason(models.TextChoices):
        REMOVED = "removed", _("The method was removed")
        EXPIRED = "expired", _("The method had expired")
        CURRENCY = "currency", _("The method cannot pay this currency")
        BLOCKED = "blocked", _("An earlier decline blocks it until it is updated")
        REATTEMPT_CAP = "reattempt_cap", _("Too many attempts on this method in 30 days")
        DECLINED_IN_RUN = "declined_in_run", _("Declined earlier in this run")
        NO_METHODS = "no_methods", _("No payment method in the charge order")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Scheduled run")
        PAY_NOW = "pay_now", _("Pay now")
        STAFF_RETRY = "staff_retry", _("Retried by support")

    # Indexed by attempt_unique_sequence (invoice, sequence), as method is by attempt_method_recent:
    # each attempt written costs no index it does not need.
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="attempts", db_index=False)
    # Sequence within the invoice; with the invoice it makes the idempotency key deterministic.
    sequence = models.PositiveIntegerField(_("sequence"))
    method = models.ForeignKey(
        PaymentMethod,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attempts",
        db_index=False,
    )
    position = models.PositiveSmallIntegerField(_("rank"), null=True, blank=True)
    retry_round = models.PositiveSmallIntegerField(_("round"), default=0)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=16, choices=Status)
    # Unique (attempt_unique_idempotency_key), with no pattern index: keys are never searched by
    # prefix. A skip has none: NULL, which unlike "" never collides with another.
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, null=True, blank=True)  # noqa: DJ001
    gateway_reference = models.CharField(_("gateway reference"), max_length=128, blank=True)
    decline_code = models.CharField(_("decline code"), max_length=64, blank=True)
    decline_class = models.CharField(_("decline class"), max_length=8, choices=DeclineClass, blank=True)
    skip_reason = models.CharField(_("skip reason"), max_length=32, choices=SkipReason, blank=True)
    message = models.CharField(_("message"), max_length=300, blank=True)
    trigger = models.CharField(_("trigger"), max_length=16, choices=Trigger, default=Trigger.SCHEDULE)
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # attempt_initiated_by: only the attempts somebody asked for
    )
    run = models.ForeignKey(
        "SettlementRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts"
    )
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        ordering = ["invoice_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "sequence"], name="attempt_unique_sequence"),
            models.UniqueConstraint(fields=["idempotency_key"], name="attempt_unique_idempotency_key"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="attempt_amount_positive"),
            # A charge has a key and a method; a skip has a reason and no key.
            models.CheckConstraint(
                condition=(Q(status="skipped") & Q(idempotency_key__isnull=True) & ~Q(skip_reason=""))
                | (~Q(status="skipped") & Q(idempotency_key__isnull=False) & Q(method__isnull=False)),
                name="attempt_charge_or_skip",
            ),
            # At most one successful charge per invoice, ever.
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(status="succeeded"), name="attempt_one_success_per_invoice"
            ),
        ]
        indexes = [
            models.Index(
                fields=["invoice"],
                condition=Q(status__in=["started", "pending", "unknown"]),
                name="attempt_unresolved",
            ),
            models.Index(fields=["method", "created_at"], name="attempt_method_recent"),
            # The recovery report's decline reasons: a currency's declined charges in a period.
            models.Index(
                fields=["currency", "created_at", "decline_code"],
                condition=Q(status="failed"),
                name="attempt_declines",
            ),
            # Webhooks and reconciliation find an attempt by the processor's reference.
            models.Index(fields=["gateway_reference"], name="attempt_gateway_reference"),
            models.Index(
                fields=["initiated_by"], condition=Q(initiated_by__isnull=False), name="attempt_initiated_by"
            ),
        ]

    def __str__(self):
        return f"{self.invoice_id}#{self.sequence} {self.status}"

    @property
    def is_unresolved(self) -> bool:
        return self.status in self.UNRESOLVED


class SettlementRun(models.Model):
    """One execution of settle_invoices (or of Pay now / Retry now): when, where and what it did."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        INTERRUPTED = "interrupted", _("Interrupted")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Renewed while the run works; a run whose heartbeat stopped was killed (see runs_mark_interrupted).
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    host = models.CharField(_("host"), max_length=200)
    pid = models.PositiveIntegerField(_("process id"), null=True, blank=True)
    as_of = models.DateTimeField(_("as of"))
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.RUNNING)
    options = models.JSONField(_("options"), default=dict, blank=True)
    considered = models.PositiveIntegerField(default=0)
    paid = models.PositiveIntegerField(default=0)
    paid_by_primary = models.PositiveIntegerField(default=0)
    paid_by_backup = models.PositiveIntegerField(default=0)
    past_due = models.PositiveIntegerField(default=0)
    uncollectible = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    COUNT_FIELDS = (
        "considered",
        "paid",
        "paid_by_primary",
        "paid_by_backup",
        "past_due",
        "uncollectible",
        "pending",
        "unknown",
        "skipped",
        "errors",
    )

    class Meta:
        verbose_name = _("settlement run")
        verbose_name_plural = _("settlement runs")
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"Run {self.pk} on {self.host} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration_s(self) -> float | None:
        if not self.finished_at:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class WebhookEvent(models.Model):
    """An event a gateway posted to /webhooks/<gateway>/, kept once per event id however often it
    arrives, with what applying it did. Read-only for everyone: support sees it in admin (its labels
    are for staff, so not in the customers' catalogue)."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"  # the attempt (and invoice) moved
        UNCHANGED = "unchanged", "Nothing to change"  # already resolved, or still pending
        UNMATCHED = "unmatched", "No matching attempt"
        ERROR = "error", "Error"  # not applied yet; the gateway sends it again

    gateway = models.CharField("gateway", max_length=32)
    event_id = models.CharField("event id", max_length=255)
    type = models.CharField("type", max_length=64)
    reference = models.CharField("charge reference", max_length=128, blank=True)
    payload = models.JSONField("payload", default=dict)
    attempt = models.ForeignKey(
        PaymentAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="webhook_events"
    )
    received_at = models.DateTimeField("received", auto_now_add=True)
    processed_at = models.DateTimeField("processed", null=True, blank=True)
    outcome = models.CharField("outcome", max_length=16, choices=Outcome, blank=True)
    error = models.CharField("error", max_length=300, blank=True)

    class Meta:
        verbose_name = "webhook event"
        verbose_name_plural = "webhook events"
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="webhook_event_once_per_gateway"),
        ]

    def __str__(self):
        return f"{self.gateway} {self.event_id} ({self.type})"


class Refund(models.Model):
    """Money given back on a paid invoice, whole or in part, by support or at the gateway.

    Recorded and committed (``started``) before the gateway is called, under an idempotency key
    derived from this row, so a refund whose answer was lost is repeated with the same key (or
    found at the gateway) and never made twice. ``source`` says who made it: support in admin, or
    someone at the gateway itself (learned from its ``charge.refunded`` webhook).
    """

    class Status(models.TextChoices):
        STARTED = "started", _("In progress")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Refused")
        UNKNOWN = "unknown", _("Outcome unknown")

    # What counts against the amount paid: everything not refused.
    COUNTED = (Status.STARTED, Status.SUCCEEDED, Status.UNKNOWN)
    UNRESOLVED = (Status.STARTED, Status.UNKNOWN)

    class Source(models.TextChoices):
        SUPPORT = "support", _("Support")
        GATEWAY = "gateway", _("At the payment processor")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="refunds")
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.STARTED)
    source = models.CharField(_("made by"), max_length=16, choices=Source, default=Source.SUPPORT)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    gateway_reference = models.CharField(_("gateway reference"), max_length=128, blank=True)
    message = models.CharField(_("message"), max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["invoice_id", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="refund_unique_gateway_reference",
            ),
        ]

    def __str__(self):
        return f"{self.idempotency_key} {self.status}"

    @property
    def idempotency_key(self) -> str:
        """The gateway's key for this refund: the same on every repeat of it."""
        return f"refund-{self.invoice_id}-{self.pk}"

    @property
    def is_unresolved(self) -> bool:
        return self.status in self.UNRESOLVED
