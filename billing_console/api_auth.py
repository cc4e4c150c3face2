"""API authentication. Kept apart from api_common: DRF imports it while loading its own views."""

from django.utils import translation
from rest_framework.authentication import TokenAuthentication

from accounts.models import Profile


class MemberTokenAuthentication(TokenAuthentication):
    """Token authentication that, like the console, answers in the member's saved language.

    The preferences middleware runs before DRF knows who a token belongs to, so the saved
    language is applied here; without one, Accept-Language decides as before.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            language = Profile.objects.filter(user=result[0]).values_list("language", flat=True).first()
            if language:
                translation.activate(language)
                request._request.LANGUAGE_CODE = language
        return result
