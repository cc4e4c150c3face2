"""Access rules shared by every console page.

- Signed out: a redirect to sign-in.
- Signed in but a member of no account: a page that says so (403).
- A viewer may read every page; anything else (POST, or a page that exists only to change
  something) is refused with 403 before any object is looked up, so the answer is the same
  whether or not the object exists.
- Objects are always fetched through accounts.selectors: another account's object is a 404.
"""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.generic import TemplateView

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class MemberPage(LoginRequiredMixin):
    """Mixin for every console view: a signed-in member of the current account."""

    page_title = ""
    nav = ""
    # True for pages that exist only to change something (add a method, confirm a removal).
    manager_only = False
    # True for the member's own preferences, which a viewer may change too.
    viewer_may_post = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.membership is None:
            return render(request, "console/no_account.html", status=403)
        if not request.membership.can_manage and (
            self.manager_only or (request.method not in SAFE_METHODS and not self.viewer_may_post)
        ):
            raise PermissionDenied
        self.account = request.account
        self.membership = request.membership
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return str(self.page_title)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("page_title", self.get_page_title())
        context["nav"] = self.nav
        return context


class ManagerPage(MemberPage):
    """A page only owners and billing members may open."""

    manager_only = True


class ConsolePage(MemberPage, TemplateView):
    pass
