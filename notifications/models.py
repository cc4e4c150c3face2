from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Account


class SentEmail(models.Model):
    """A notification sent (or being sent) for one event. The event key makes it once only."""

    class Kind(models.TextChoices):
        BACKUP_CHARGED = "backup_charged", _("A backup method was charged")
        ALL_FAILED = "all_failed", _("All payment methods failed")
        ACCOUNT_SUSPENDED = "account_suspended", _("Account suspended")
        METHOD_EXPIRING = "method_expiring", _("Payment method expiring soon")
        SECURITY_NOTICE = "security_notice", _("Payment settings changed")
        INVITATION = "invitation", _("Invitation to join an account")
        AUTHENTICATION_REQUIRED = "authentication_required", _("A payment needs authentication")
        RECEIPT = "receipt", _("Payment receipt")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    # Security and failed-payment notices reach every recipient, whatever their preferences; an
    # invitation goes to a person who has no preferences here yet.
    ALWAYS_SENT = (
        Kind.SECURITY_NOTICE,
        Kind.ALL_FAILED,
        Kind.ACCOUNT_SUSPENDED,
        Kind.INVITATION,
        # Nothing is paid until the customer acts on it.
        Kind.AUTHENTICATION_REQUIRED,
    )

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="sent_emails")
    kind = models.CharField(_("kind"), max_length=32, choices=Kind)
    event_key = models.CharField(_("event"), max_length=200, unique=True)
    recipients = models.JSONField(_("recipients"), default=list)
    # Address -> language the email was rendered in; an address missing here gets LANGUAGE_CODE.
    languages = models.JSONField(_("languages"), default=dict, blank=True)
    # Address -> time zone its times are shown in; an address missing here gets TIME_ZONE.
    time_zones = models.JSONField(_("time zones"), default=dict, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.QUEUED)
    error = models.CharField(_("error"), max_length=300, blank=True)
    # A batched email (security notices: one member's changes within a few minutes) collects the
    # events of one ``batch_key`` until ``deliver_after``, when the send_notifications run sends it.
    # An email sent on commit has neither.
    batch_key = models.CharField(_("batch"), max_length=200, blank=True, default="")
    deliver_after = models.DateTimeField(_("deliver after"), null=True, blank=True)
    # The console's address its links start with: where the request that caused it came to, or
    # SITE_URL for one caused outside a request (a settlement run, a reminder). Empty: SITE_URL.
    site_url = models.CharField(_("site address"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("sent email")
        verbose_name_plural = _("sent emails")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "deliver_after"], name="sentemail_due"),
            models.Index(fields=["batch_key", "status"], name="sentemail_batch"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} → {', '.join(self.recipients)}"
