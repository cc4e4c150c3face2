"""Deploy checks for settings this product depends on beyond Django's own."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

# Caches whose counts stay inside one process: each gunicorn worker (and each host) keeps its own.
PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "local memory",
    "django.core.cache.backends.dummy.DummyCache": "the dummy cache, which keeps nothing",
}


@register(Tags.caches, Tags.security, deploy=True)
def check_shared_cache(app_configs=None, **kwargs):
    """Sign-in throttling, password-reset limits and the card-testing limit count in the default
    cache; with a process-local one each server process counts alone, several times weaker."""
    if settings.DEBUG:
        return []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            f"The cache is {PROCESS_LOCAL_CACHES[backend]}, local to each process: sign-in throttling, "
            "password-reset limits and the card-testing limit on new payment methods count per "
            "process, so every server process (and every host) allows the full limit.",
            hint="Set CACHE_URL to a cache the processes share, e.g. redis://127.0.0.1:6379/0.",
            id="billing.W001",
        )
    ]
