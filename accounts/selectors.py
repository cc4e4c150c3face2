"""The one place that decides what a member may see: every console view and API queryset uses it."""

from django.db.models import F, Model, QuerySet
from django.http import Http404

from .models import Account, Membership


def memberships_for_user(*, user, with_preferences: bool = False) -> QuerySet[Membership]:
    """``user``'s memberships with their accounts, in the switcher's order.

    ``with_preferences``: every row also carries the user's own saved language and time zone
    (accounts.Profile) as ``profile_language`` and ``profile_time_zone``, None without a profile,
    so a request learns both in one query.
    """
    if not user.is_authenticated:
        return Membership.objects.none()
    memberships = (
        Membership.objects.filter(user=user).select_related("account").order_by("account__name", "pk")
    )
    if with_preferences:
        memberships = memberships.annotate(
            profile_language=F("user__profile__language"), profile_time_zone=F("user__profile__time_zone")
        )
    return memberships


def request_memberships(request, *, user) -> list[Membership] | None:
    """``user``'s memberships as loaded once for this request, or None if they were not loaded."""
    if not user.is_authenticated or getattr(request, "memberships_user_id", None) != user.pk:
        return None
    return request.memberships


def membership_for(
    *, user, account_id: int | None, memberships: list[Membership] | None = None
) -> Membership | None:
    """The user's membership of ``account_id`` if there is one, else their first membership.

    ``memberships`` are the user's memberships when already loaded (memberships_for_user order).
    """
    if memberships is None:
        memberships = memberships_for_user(user=user)
    if account_id is not None:
        chosen = next((m for m in memberships if m.account_id == account_id), None)
        if chosen is not None:
            return chosen
    return next(iter(memberships), None)


def scoped(queryset: QuerySet, *, account: Account, field: str = "account") -> QuerySet:
    """Restrict ``queryset`` to rows of ``account`` (``field`` may follow relations: "invoice__account")."""
    return queryset.filter(**{field: account})


def get_for_account(queryset: QuerySet, *, account: Account, pk, field: str = "account") -> Model:
    """One object of ``account``; another account's object, or a malformed id, is a 404."""
    try:
        return scoped(queryset, account=account, field=field).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
