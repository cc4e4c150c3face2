"""Sign-in, the account switcher, the member's settings and the account's activity log."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, TemplateView

from core.views import MemberPage
from invoices.models import Invoice
from payments.models import PaymentMethod

from .forms import PreferencesForm, ThrottledAuthenticationForm, ThrottledPasswordResetForm
from .middleware import SESSION_KEY
from .models import Account, AuditEvent, Profile
from .selectors import memberships_for_user, scoped


class SignInView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True
    extra_context = {"page_title": gettext_lazy("Sign in")}


class SignOutView(auth_views.LogoutView):
    pass


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    extra_context = {"page_title": gettext_lazy("Reset your password")}


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"
    extra_context = {"page_title": gettext_lazy("Check your email")}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    extra_context = {"page_title": gettext_lazy("Choose a new password")}


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
    extra_context = {"page_title": gettext_lazy("Password changed")}


class SwitchAccountView(MemberPage, View):
    """Make another of the member's accounts the current one (kept in the session)."""

    viewer_may_post = True
    http_method_names = ["post"]

    def post(self, request):
        try:
            account_id = int(request.POST.get("account", ""))
        except ValueError:
            raise Http404 from None
        membership = memberships_for_user(user=request.user).filter(account_id=account_id).first()
        if membership is None:
            raise Http404
        request.session[SESSION_KEY] = membership.account_id
        messages.success(request, _("You are now working in %(name)s.") % {"name": membership.account.name})
        return redirect("dashboard")


def _remember_language(response, language: str) -> None:
    """The language cookie LocaleMiddleware reads, so signed-out pages keep the member's choice;
    an empty choice removes it, and the browser's Accept-Language decides again."""
    if not language:
        response.delete_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


class LanguageView(View):
    """The language menu (日本語 / English) in the top bar and on the sign-in pages.

    Saved to the member's profile, which wins over the browser's language from then on, and to the
    language cookie, so the signed-out pages speak it too. Works as a plain form, without JavaScript.
    """

    http_method_names = ["post"]

    def post(self, request):
        language = request.POST.get("language", "")
        if language not in dict(settings.LANGUAGES):
            return HttpResponseBadRequest("Unknown language.", content_type="text/plain")
        if request.user.is_authenticated:
            Profile.objects.update_or_create(user=request.user, defaults={"language": language})
        next_url = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("dashboard" if request.user.is_authenticated else "login")
        response = redirect(next_url)
        _remember_language(response, language)
        with translation.override(language):
            name = translation.get_language_info(language)["name_local"]
            messages.success(request, _("The console is now in %(language)s.") % {"language": name})
        return response


class SettingsView(MemberPage, FormView):
    template_name = "accounts/settings.html"
    form_class = PreferencesForm
    page_title = gettext_lazy("Settings")
    nav = "settings"
    viewer_may_post = True  # a member's own preferences, not the account's billing
    success_url = reverse_lazy("settings")

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["profile"] = Profile.objects.filter(user=self.request.user).first()
        kwargs["membership"] = self.membership
        return kwargs

    def form_valid(self, form):
        form.save(user=self.request.user)
        messages.success(self.request, _("Your settings were saved."))
        response = super().form_valid(form)
        next_url = self.request.POST.get("next", "")
        if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={self.request.get_host()}):
            response = redirect(next_url)
        _remember_language(response, form.cleaned_data["language"])
        return response


def _order_text(order, labels) -> str:
    if not order:
        return _("empty")
    parts = []
    for position, method_id in enumerate(order, start=1):
        label = labels.get(method_id, _("method %(id)s") % {"id": method_id})
        rank = _("Primary") if position == 1 else _("Backup %(n)s") % {"n": position - 1}
        parts.append(f"{rank}: {label}")
    return " · ".join(parts)


def _status_label(choices, value) -> str:
    """A stored status in the reader's language ("past_due" -> "Past due" / "支払期限超過")."""
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value or "").replace("_", " ")


def describe_event(event: AuditEvent, *, methods: dict, invoices: dict) -> str:
    """The change an audit event records, in one line of plain words."""
    before, after = event.before or {}, event.after or {}
    action = AuditEvent.Action
    if event.action == action.ORDER_CHANGED:
        return _("%(before)s → %(after)s") % {
            "before": _order_text(before.get("order"), methods),
            "after": _order_text(after.get("order"), methods),
        }
    if event.action in (action.METHOD_ADDED, action.METHOD_REMOVED):
        return (after or before).get("label", "")
    if event.action == action.METHOD_UPDATED:
        return _("%(label)s: expiry %(before)s → %(after)s") % {
            "label": after.get("label", ""),
            "before": before.get("exp") or "—",
            "after": after.get("exp") or "—",
        }
    if event.action == action.ACCOUNT_STATUS:
        return _("Account status %(before)s → %(after)s") % {
            "before": _status_label(Account.Status, before.get("status")),
            "after": _status_label(Account.Status, after.get("status")),
        }
    if event.object_type == "invoice":
        number = invoices.get(event.object_id) or after.get("number") or event.object_id
        if before.get("status") and after.get("status"):
            return _("Invoice %(number)s: %(before)s → %(after)s") % {
                "number": number,
                "before": _status_label(Invoice.Status, before["status"]),
                "after": _status_label(Invoice.Status, after["status"]),
            }
        return _("Invoice %(number)s") % {"number": number}
    return ""


class ActivityView(MemberPage, TemplateView):
    template_name = "accounts/activity.html"
    page_title = gettext_lazy("Activity")
    nav = "activity"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        events = scoped(AuditEvent.objects, account=self.account).order_by("-created_at", "-pk")
        page = Paginator(events, self.paginate_by).get_page(self.request.GET.get("page"))
        rows = list(page.object_list)
        method_ids, invoice_ids = set(), set()
        for event in rows:
            for state in (event.before or {}, event.after or {}):
                method_ids.update(m for m in state.get("order") or [] if isinstance(m, int))
            if event.object_type == "invoice" and event.object_id.isdigit():
                invoice_ids.add(int(event.object_id))
        # One query each for every label on the page, however many events it shows.
        methods = {
            m.pk: m.label
            for m in scoped(PaymentMethod.objects, account=self.account).filter(pk__in=method_ids)
        }
        invoices = {
            str(pk): number
            for pk, number in scoped(Invoice.objects, account=self.account)
            .filter(pk__in=invoice_ids)
            .values_list("pk", "number")
        }
        context.update(
            page_obj=page,
            events=[(event, describe_event(event, methods=methods, invoices=invoices)) for event in rows],
        )
        return context
