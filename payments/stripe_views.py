"""The console's add-card and add-SEPA pages when the Stripe gateway is active.

The customer types the card number or IBAN into Stripe.js (static/console/stripe-setup.js), which
confirms a SetupIntent (``usage=off_session``) straight with Stripe. The page then posts us only that
SetupIntent's id; ``finish_setup`` reads back what we keep (brand, last 4, expiry, fingerprint). The
number never reaches our server (PCI DSS SAQ A). Without JavaScript nothing can be added here, and
the page says so; ranking, removing and paying work without it.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import FormView

from core.views import ManagerPage

from . import services
from .gateways import get_gateway
from .gateways.base import GatewayError, InvalidPaymentDetails
from .gateways.stripe import StripeGateway
from .gateways.stripe.client import stripe_settings
from .gateways.stripe.csp import content_security_policy
from .models import PaymentMethod
from .ranks import position_label
from .ratelimit import add_method_blocked, add_method_failure_record
from .stripe_forms import StripeSetupForm

# The console's URL slug → the kind of method Stripe saves.
KINDS = {"card": PaymentMethod.Kind.CARD, "sepa": PaymentMethod.Kind.SEPA_DEBIT}
# A kind the sandbox's pages offer that Stripe does not save here (US bank accounts).
UNSUPPORTED = "bank"


def stripe_collects() -> bool:
    """Whether new methods are saved through Stripe.js (the Stripe gateway is the active one)."""
    return get_gateway().name == StripeGateway.name


class StripeAddPaymentMethodView(ManagerPage, FormView):
    template_name = "payments/method_add_stripe.html"
    form_class = StripeSetupForm
    nav = "methods"

    def dispatch(self, request, *args, **kwargs):
        if kwargs["kind"] not in (*KINDS, UNSUPPORTED):
            raise Http404
        self.slug = kwargs["kind"]
        self.kind = KINDS.get(self.slug)
        response = super().dispatch(request, *args, **kwargs)
        # Only this page may load Stripe.js, talk to Stripe's API and show its frames.
        response._csp_config = content_security_policy(settings.SECURE_CSP)
        return response

    def get(self, request, *args, **kwargs):
        if self.kind is None:
            # The list page offers every kind; Stripe saves cards and SEPA accounts here.
            messages.info(request, _("US bank accounts cannot be added with our payment processor."))
            return redirect("payment_methods")
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if self.kind is None:
            raise Http404
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().post(request, *args, **kwargs)

    def blocked(self):
        return render(
            self.request,
            "payments/add_blocked.html",
            {"page_title": _("Try again later"), "nav": self.nav},
            status=429,
        )

    def get_page_title(self):
        return _("Add a card") if self.kind == PaymentMethod.Kind.CARD else _("Add a SEPA bank account")

    def render_to_response(self, context, **response_kwargs):
        # Each page (and each retry) confirms a SetupIntent of its own, made outside any transaction.
        try:
            context["setup"] = services.payment_method_setup_start(account=self.account, kind=self.kind)
        except GatewayError:
            context["setup"] = None
            response_kwargs.setdefault("status", 503)
        context.update(
            kind=self.slug,
            stripe_js_url=stripe_settings().js_url,
            creditor=settings.BILLING_COMPANY_NAME,
            billing_email=self.account.billing_email or self.request.user.email,
        )
        return super().render_to_response(context, **response_kwargs)

    def form_invalid(self, form):
        # Card testing: a refused method counts toward the account's hourly limit, as on the sandbox.
        add_method_failure_record(account_id=self.account.pk)
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().form_invalid(form)

    def form_valid(self, form):
        try:
            method = services.payment_method_setup_finish(
                account=self.account,
                actor=self.request.user,
                kind=self.kind,
                reference=form.cleaned_data["setup_intent"],
                add_to_order=form.cleaned_data["add_to_order"],
                request=self.request,
            )
        except InvalidPaymentDetails as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        except ValidationError as exc:  # refused by our own rules (a duplicate, say)
            form.add_error(None, exc)
            return self.form_invalid(form)
        except GatewayError:
            form.add_error(None, _("Our payment processor cannot be reached. Try again in a few minutes."))
            return super().form_invalid(form)
        order = services.charge_order_ids(account=self.account)
        if method.pk in order:
            message = _("%(label)s is now %(rank)s.") % {
                "label": method.label,
                "rank": position_label(order.index(method.pk) + 1),
            }
        else:
            message = _("%(label)s was added. It is on file but not in the charge order.") % {
                "label": method.label
            }
        messages.success(self.request, message)
        return redirect(f"{reverse('payment_methods')}#method-{method.pk}")
