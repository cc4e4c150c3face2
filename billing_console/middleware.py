"""Shows the console in the member's own language and time zone (accounts.models.Profile)."""

import zoneinfo

from django.utils import timezone, translation

from accounts.models import Profile


class MemberPreferencesMiddleware:
    """Activates the signed-in member's language and time zone for the whole request.

    Runs after LocaleMiddleware, so a member's saved language wins over the browser's; an unset
    preference leaves the browser's language and the site's time zone in place. The preferences
    usually come with the memberships CurrentAccountMiddleware loaded (``member_preferences``);
    a user who belongs to no account has them read here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        language, time_zone = "", ""
        if user is not None and user.is_authenticated:
            prefs = getattr(request, "member_preferences", None)
            if prefs is None or getattr(request, "memberships_user_id", None) != user.pk:
                prefs = Profile.objects.filter(user=user).values_list("language", "time_zone").first()
            if prefs:
                language, time_zone = prefs
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        try:
            zone = zoneinfo.ZoneInfo(time_zone) if time_zone else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is not None:
            timezone.activate(zone)
        request.member_time_zone = zone
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
