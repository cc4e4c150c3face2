"""Sign-in, the account switcher, the language menu and the member's settings (the activity log,
which names methods and invoices, is billing_console/views/activity.py)."""

from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView

from core.views import MemberPage

from .forms import PreferencesForm, ThrottledAuthenticationForm, ThrottledPasswordResetForm
from .middleware import SESSION_KEY
from .models import Profile
from .selectors import memberships_for_user


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
        return redirect(_same_page_elsewhere(request, request.POST.get("next", "")))


def _same_page_elsewhere(request, next_url: str) -> str:
    """Where switching account from ``next_url`` lands: the same page in the new account (the
    invoices stay the invoices, with their filters), or the dashboard when that page belongs to the
    old account (an invoice, a method) or is not a page of this site. ``?account=`` is dropped (it
    would switch straight back), and so is the page number of a list (the new one may be shorter)."""
    dashboard = reverse("dashboard")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return dashboard
    parts = urlsplit(next_url)
    try:
        match = resolve(parts.path)
    except Resolver404:
        return dashboard
    if match.url_name == "switch_account" or "pk" in match.kwargs:
        return dashboard
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("account", "page")]
    )
    return parts.path + (f"?{query}" if query else "")


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
