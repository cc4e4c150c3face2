from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Account(models.Model):
    """A customer organisation that receives invoices and keeps payment methods on file."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(_("name"), max_length=200)
    billing_email = models.EmailField(_("billing email"))
    # Up to BILLING_MAX_RECIPIENTS further addresses that get invoice and payment emails (not
    # security notices, which go to owners only). Changed through accounts.billing_contacts.
    billing_recipients = models.JSONField(_("further billing recipients"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.ACTIVE)
    currency = models.CharField(_("default currency"), max_length=3, default="USD")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="account_currency_iso4217"
            ),
        ]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A user's place in an account. Owners and billing members may pay and change methods."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        BILLING = "billing", _("Billing")
        VIEWER = "viewer", _("Viewer")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role, default=Role.VIEWER)
    # Everything but security notices and failed-payment notices can be switched off.
    email_opt_out = models.BooleanField(_("opt out of optional emails"), default=False)
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["account_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_unique_user"),
        ]

    def __str__(self):
        return f"{self.user} ({self.get_role_display()}) @ {self.account}"

    @property
    def can_manage(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.BILLING)


class Profile(models.Model):
    """Per-person preferences that follow the user across accounts."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True, default=""
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self):
        return f"{self.user}"


class AuditEvent(models.Model):
    """An append-only record of a change: who, when, what it was before and after."""

    class Action(models.TextChoices):
        METHOD_ADDED = "method.added", _("Payment method added")
        METHOD_UPDATED = "method.updated", _("Payment method updated")
        METHOD_REMOVED = "method.removed", _("Payment method removed")
        ORDER_CHANGED = "charge_order.changed", _("Charge order changed")
        INVOICE_ISSUED = "invoice.issued", _("Invoice issued")
        INVOICE_PAID = "invoice.paid", _("Invoice paid")
        INVOICE_PAST_DUE = "invoice.past_due", _("Invoice past due")
        INVOICE_UNCOLLECTIBLE = "invoice.uncollectible", _("Invoice marked uncollectible")
        INVOICE_VOIDED = "invoice.voided", _("Invoice voided")
        INVOICE_RETRIED = "invoice.retried", _("Invoice retried")
        REFUND_REQUESTED = "invoice.refund_requested", _("Refund requested")
        INVOICE_REFUNDED = "invoice.refunded", _("Invoice refunded")
        REFUND_FAILED = "invoice.refund_failed", _("Refund refused by the gateway")
        PAY_NOW = "invoice.pay_now", _("Pay now requested")
        ACCOUNT_STATUS = "account.status", _("Account status changed")
        MEMBER_CHANGED = "member.changed", _("Member changed")
        # Support lifted the card-testing pause on adding payment methods.
        ADD_BLOCK_LIFTED = "account.add_block_lifted", _("Payment method block lifted")
        BILLING_CONTACTS_CHANGED = "billing_contacts.changed", _("Billing contacts changed")
        MEMBER_INVITED = "member.invited", _("Member invited")
        INVITATION_CANCELED = "invitation.canceled", _("Invitation canceled")
        MEMBER_JOINED = "member.joined", _("Member joined")
        MEMBER_ROLE_CHANGED = "member.role_changed", _("Member's role changed")
        MEMBER_REMOVED = "member.removed", _("Member removed")

    # Its index is the first column of audit_account_recent.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="audit_events", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # "settlement", "staff: alice" …: who acted, kept even if the user is deleted.
    actor_label = models.CharField(_("actor"), max_length=200)
    action = models.CharField(_("action"), max_length=40, choices=Action)
    object_type = models.CharField(_("object type"), max_length=40, blank=True)
    object_id = models.CharField(_("object id"), max_length=40, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"], name="audit_account_recent")]

    def __str__(self):
        return f"{self.get_action_display()} by {self.actor_label}"


class Invitation(models.Model):
    """An owner's invitation for a person, by email address, to join the account in a role.

    The link in the email carries the row's id, signed (accounts.members.invitation_token): nothing
    secret is stored. It works once, until ``expires_at``, and not after it is canceled; accepting
    claims it with a conditional update, so a double click cannot create two memberships.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=16, choices=Membership.Role)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("invited"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    canceled_at = models.DateTimeField(_("canceled"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "email"], name="invitation_account_email")]

    def __str__(self):
        return f"{self.email} ({self.get_role_display()}) @ {self.account}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.canceled_at is None and self.expires_at > timezone.now()
