"""A place in the charge order, in the words every page, email, admin and API response uses:
position 1 is "Primary", position N+1 is "Backup N"."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# An attempt with no position was on a method the member chose for Pay now.
CHOSEN_METHOD = gettext_lazy("Chosen method")
# A method on file that settlement never charges by itself.
NOT_IN_ORDER = gettext_lazy("Not in the charge order")


def position_label(position: int | None, *, unranked=CHOSEN_METHOD) -> str:
    """The place in words ("Primary", "Backup 1" …), in the active language; ``unranked`` for none."""
    if position is None:
        return str(unranked)
    if position == 1:
        return _("Primary")
    return _("Backup %(n)s") % {"n": position - 1}
