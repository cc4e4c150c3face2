"""The members page, the billing contacts page and accepting an invitation: thin views over
accounts.members and accounts.billing_contacts, which check roles and the last owner themselves."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView

from core.views import MemberPage

from . import members
from .billing_contacts import BillingContactsError, billing_contacts, billing_contacts_set
from .member_forms import BillingContactsForm, InvitationForm, NewMemberPasswordForm, RoleForm
from .middleware import SESSION_KEY
from .models import Invitation, Membership
from .selectors import get_for_account, scoped


def _error_text(exc) -> str:
    return " ".join(exc.messages)


class BillingContactsView(MemberPage, FormView):
    """Owners and billing members change who receives invoices and receipts; viewers read them."""

    template_name = "accounts/billing_contacts.html"
    form_class = BillingContactsForm
    page_title = gettext_lazy("Billing contacts")
    nav = "settings"
    success_url = reverse_lazy("billing_contacts")

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["initial"] = BillingContactsForm.initial_for(billing_contacts(self.account))
        kwargs["disabled"] = not self.membership.can_manage
        return kwargs

    def form_valid(self, form):
        try:
            billing_contacts_set(
                account=self.account,
                actor=self.request.user,
                billing_email=form.cleaned_data["billing_email"],
                recipients=form.recipients,
                request=self.request,
            )
        except BillingContactsError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error("billing_email" if field == "billing_email" else None, errors)
            return self.form_invalid(form)
        messages.success(self.request, _("The billing contacts were saved."))
        return super().form_valid(form)

    def get_context_data(self, **kwargs):
        return super().get_context_data(max_recipients=settings.BILLING_MAX_RECIPIENTS, **kwargs)


class MembersView(MemberPage, TemplateView):
    """Who is a member, in which role, and who is invited. Only owners change it."""

    template_name = "accounts/members.html"
    page_title = gettext_lazy("Members")
    nav = "settings"

    @property
    def is_owner(self) -> bool:
        return self.membership.role == Membership.Role.OWNER

    def get_context_data(self, invite_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            is_owner=self.is_owner,
            members=scoped(Membership.objects, account=self.account)
            .select_related("user")
            .order_by("user__email", "pk"),
            invitations=members.pending_invitations(self.account).order_by("email"),
            invite_form=invite_form or InvitationForm(),
            role_choices=Membership.Role.choices,
            invitation_days=settings.INVITATION_EXPIRY_DAYS,
        )
        return context

    def post(self, request):
        if not self.is_owner:
            raise PermissionDenied
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation = members.invitation_create(
                    account=self.account,
                    actor=request.user,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    request=request,
                )
            except members.MemberChangeError as exc:
                form.add_error("email", _error_text(exc))
            else:
                messages.success(
                    request, _("An invitation was sent to %(email)s.") % {"email": invitation.email}
                )
                return redirect("members")
        return self.render_to_response(self.get_context_data(invite_form=form), status=400)


class MemberChangeView(MemberPage, View):
    """Change a member's role, or remove them (the buttons on the members page)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        membership = get_for_account(
            Membership.objects.select_related("user", "account"), account=self.account, pk=pk
        )
        name = members.member_label(membership.user)
        try:
            if request.POST.get("action") == "remove":
                members.member_remove(membership=membership, actor=request.user, request=request)
                message = _("%(member)s is no longer a member.") % {"member": name}
            else:
                form = RoleForm(request.POST)
                if not form.is_valid():
                    raise Http404
                membership = members.member_set_role(
                    membership=membership, actor=request.user, role=form.cleaned_data["role"], request=request
                )
                message = _("%(member)s is now %(role)s.") % {
                    "member": name,
                    "role": membership.get_role_display(),
                }
        except members.MemberChangeError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, message)
        if not scoped(Membership.objects, account=self.account).filter(user=request.user).exists():
            return redirect("dashboard")  # the member removed themselves
        return redirect("members")


class InvitationCancelView(MemberPage, View):
    http_method_names = ["post"]

    def post(self, request, pk):
        invitation = get_for_account(
            Invitation.objects.select_related("account"), account=self.account, pk=pk
        )
        if members.invitation_cancel(invitation=invitation, actor=request.user, request=request):
            messages.success(
                request, _("The invitation for %(email)s was canceled.") % {"email": invitation.email}
            )
        return redirect("members")


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class InvitationAcceptView(View):
    """The link in an invitation email. Signed in as the invited address: an Accept button.
    Signed out: sign in first, or, for an address with no user yet, choose a password."""

    template_name = "accounts/invitation_accept.html"

    def dispatch(self, request, token):
        self.invitation = members.invitation_from_token(token)
        if self.invitation is None:
            raise Http404
        self.refusal = members.invitation_refusal(self.invitation)
        self.has_user = get_user_model().objects.filter(email__iexact=self.invitation.email).exists()
        return super().dispatch(request, token)

    def render(self, form=None, *, error="", status=200):
        context = {
            "page_title": _("Join %(name)s") % {"name": self.invitation.account.name},
            "invitation": self.invitation,
            "refusal": self.refusal,
            "error": error,
            "for_this_user": members.invitation_is_for(self.invitation, self.request.user),
            "has_user": self.has_user,
            "form": form,
            "sign_in_url": f"{reverse('login')}?{urlencode({'next': self.request.path})}",
        }
        return render(self.request, self.template_name, context, status=410 if self.refusal else status)

    def _new_user_form(self):
        if self.request.user.is_authenticated or self.has_user:
            return None
        data = self.request.POST if self.request.method == "POST" else None
        return NewMemberPasswordForm(data, email=self.invitation.email)

    def get(self, request, token):
        return self.render(self._new_user_form())

    def post(self, request, token):
        if self.refusal:
            return self.render()
        form = self._new_user_form()
        try:
            if form is not None:
                if not form.is_valid():
                    return self.render(form, status=400)
                membership = members.invitation_accept_new_user(
                    invitation=self.invitation, password=form.cleaned_data["password1"], request=request
                )
                login(request, membership.user)
            elif request.user.is_authenticated:
                membership = members.invitation_accept(
                    invitation=self.invitation, user=request.user, request=request
                )
            else:
                return self.render()
        except members.MemberChangeError as exc:
            self.invitation.refresh_from_db()
            self.refusal = members.invitation_refusal(self.invitation)
            return self.render(form, error=_error_text(exc), status=400)
        request.session[SESSION_KEY] = membership.account_id
        messages.success(
            request,
            _("Welcome to %(name)s. You are a member as %(role)s.")
            % {"name": membership.account.name, "role": membership.get_role_display()},
        )
        return redirect("dashboard")
