"""API authentication. Kept apart from the API toolkit: DRF imports it while loading its own views."""

from django.core.exceptions import ObjectDoesNotExist
from django.utils import translation
from rest_framework.authentication import TokenAuthentication


class MemberTokenAuthentication(TokenAuthentication):
    """Token authentication that, like the console, answers in the member's saved language.

    The preferences middleware runs before DRF knows who a token belongs to, so the saved
    language is applied here; without one, Accept-Language decides as before.
    """

    def authenticate_credentials(self, key):
        model = self.get_model()
        # The profile comes in the same query as the token and its user.
        token = model.objects.select_related("user__profile").filter(key=key).first()
        if token is None or not token.user.is_active:
            return super().authenticate_credentials(key)  # raises DRF's own error
        return token.user, token

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            try:
                language = result[0].profile.language
            except ObjectDoesNotExist:
                language = ""
            if language:
                translation.activate(language)
                request._request.LANGUAGE_CODE = language
        return result
