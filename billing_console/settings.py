"""Settings for the billing console, read from the environment.

Every value is typed and fails loudly: a bad value stops start-up with a message naming the setting.
"""

import hashlib
import hmac
import os
import urllib.parse
import zoneinfo
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def _db(name: str, default: str) -> dict:
    raw = env.str(name, default=default)
    if "://" not in raw:
        raise ImproperlyConfigured(
            f"{name} is not a valid database URL (expected postgres://user@host:5432/name or sqlite:///path)."
        )
    try:
        config = environ.Env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several types for malformed URLs
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    # django-environ passes an unknown scheme through as the engine instead of refusing it.
    scheme = raw.split(":", 1)[0]
    if config.get("ENGINE", "") in ("", scheme):
        raise ImproperlyConfigured(f"{name} names an unknown database scheme: {scheme!r}.")
    if config["ENGINE"].endswith("sqlite3"):
        # Several settlement threads and the sandbox ledger share the file: wait for the lock
        # instead of failing, and take the write lock up front so two writers never deadlock.
        config.setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
        # Tests use a file, not shared-cache memory: settlement threads and subprocesses must see it.
        # One file per test process, so two test sessions never share one.
        config["TEST"] = {"NAME": str(Path(config["NAME"]).with_suffix(f".test-{os.getpid()}.sqlite3"))}
    elif not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} must name a database.")
    else:
        # Parameters travel apart from the SQL and a statement run again and again (the settlement's
        # reads and writes, the foreign-key checks behind them) is prepared once per connection, as
        # psycopg does after five runs: the server parses and plans it once, not every time.
        config.setdefault("OPTIONS", {}).setdefault("server_side_binding", DATABASE_SERVER_SIDE_BINDING)
    # Keep each connection open between requests instead of opening one per request (a URL's own
    # ?conn_max_age= wins); a connection that broke meanwhile is checked and replaced.
    config.setdefault("CONN_MAX_AGE", DATABASE_CONN_MAX_AGE)
    config["CONN_HEALTH_CHECKS"] = True
    return config


DEBUG = _bool("DEBUG", False)
# Seconds a database connection is reused across requests; 0 opens one per request.
DATABASE_CONN_MAX_AGE = _int("DATABASE_CONN_MAX_AGE", 60)
# PostgreSQL: bind parameters on the server and prepare repeated statements (off: client-side binding).
DATABASE_SERVER_SIDE_BINDING = _bool("DATABASE_SERVER_SIDE_BINDING", True)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "billing_console",
    "accounts",
    "payments",
    "payments.sandbox",
    "invoices",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.CurrentAccountMiddleware",
    "notifications.site.RequestSiteMiddleware",
    "billing_console.middleware.MemberPreferencesMiddleware",
]

ROOT_URLCONF = "billing_console.urls"
WSGI_APPLICATION = "billing_console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "billing_console.context_processors.console",
            ],
        },
    },
]

# The embedded default is a SQLite file; PostgreSQL is the production database.
DATABASES = {"default": _db("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}

# The sandbox gateway keeps its ledger in a database of its own, written on its own connection,
# as a remote processor would: nothing our side rolls back can erase a charge it made.
_default_url = env.str("DATABASE_URL", default="")
if _default_url.startswith(("postgres://", "postgresql://", "pgsql://")):
    _sandbox_default = _default_url.rsplit("?", 1)[0] + "_sandbox"
else:
    _sandbox_default = f"sqlite:///{BASE_DIR / 'sandbox.sqlite3'}"
DATABASES["sandbox"] = _db("SANDBOX_DATABASE_URL", _sandbox_default)
if DATABASES["sandbox"]["ENGINE"].endswith("postgresql"):
    # The ledger stands for a processor's own books on its own servers: its commits don't wait
    # for our server's disk flush, so a simulated gateway never slows down the writes that are ours.
    # (A crashed client process loses nothing; only a crash of the server itself could.)
    DATABASES["sandbox"].setdefault("OPTIONS", {}).setdefault("options", "-c synchronous_commit=off")
    # Created on first connection when it does not exist yet, as SQLite creates the ledger's file.
    DATABASES["sandbox"]["ENGINE"] = "payments.sandbox.postgresql"
DATABASE_ROUTERS = ["payments.sandbox.routers.SandboxRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

try:
    CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://billing")}
except Exception as exc:
    raise ImproperlyConfigured(f"CACHE_URL is not a valid cache URL: {exc}") from None
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "core.cache.RedisCache"  # the same, for less processor time

# Sessions live in the database. With a shared in-memory cache (Redis, memcached) they are also
# kept there, so a request reads its session from the cache instead of querying the database; the
# database stays the record, so a cache that is emptied or restarted signs nobody out. A cache of
# one process (local memory) must not hold them: signing out in one process would not reach
# another's copy.
SHARED_CACHE_BACKENDS = {
    "core.cache.RedisCache",
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
}
if CACHES["default"]["BACKEND"] in SHARED_CACHE_BACKENDS:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Sign-in throttling: failures per username and client address, counted in the shared cache.
SIGNIN_FAILURES_ALLOWED = _int("SIGNIN_FAILURES_ALLOWED", 10, minimum=1)
SIGNIN_FAILURE_WINDOW_SECONDS = _int("SIGNIN_FAILURE_WINDOW_SECONDS", 900, minimum=60)
PASSWORD_RESET_TIMEOUT = _int("PASSWORD_RESET_TIMEOUT", 60 * 60 * 3, minimum=300)
# Password reset emails sent to one address per hour; more requests send nothing.
PASSWORD_RESET_EMAILS_PER_HOUR = _int("PASSWORD_RESET_EMAILS_PER_HOUR", 3, minimum=1)
# How long an invitation link to join an account works, and how many further addresses (besides
# the billing email) may receive an account's invoice and payment emails.
INVITATION_EXPIRY_DAYS = _int("INVITATION_EXPIRY_DAYS", 7, minimum=1)
BILLING_MAX_RECIPIENTS = _int("BILLING_MAX_RECIPIENTS", 5, minimum=0)
# One member's changes to payment settings within this many seconds of the first make one
# security notice, sent when the window closes (send_notifications); 0 sends one per change.
SECURITY_NOTICE_WINDOW_SECONDS = _int("SECURITY_NOTICE_WINDOW_SECONDS", 600, minimum=0)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
if TIME_ZONE not in zoneinfo.available_timezones():
    raise ImproperlyConfigured(
        f"TIME_ZONE must be an IANA time zone such as Europe/Paris, not {TIME_ZONE!r}."
    )
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}


# Email: the console backend in development, SMTP (or a file drop) through EMAIL_URL.
def _mail_folder(raw: str) -> str:
    """The folder of ``filemail://<path>``: ``filemail:///srv/mail`` is the absolute /srv/mail
    (django-environ would drop its leading slash), ``filemail://mail`` is ``mail`` beside
    manage.py, and ``filemail://`` is ``sent-emails`` beside it."""
    split = urllib.parse.urlsplit(raw)
    path = urllib.parse.unquote(split.netloc + split.path)
    return str(BASE_DIR / (path or "sent-emails"))  # an absolute path stays itself


def _mailer(name: str, default: str) -> dict:
    raw = env.str(name, default=default)
    try:
        config = environ.Env.email_url_config(raw)
    except Exception as exc:
        raise ImproperlyConfigured(f"{name} is not a valid email URL: {exc}") from None
    backend = config.get("EMAIL_BACKEND")
    if not backend:
        raise ImproperlyConfigured(f"{name} names an unknown email scheme: {raw.split(':', 1)[0]!r}.")
    if backend.endswith("smtp.EmailBackend"):
        options = {
            "host": config.get("EMAIL_HOST") or "localhost",
            "port": config.get("EMAIL_PORT") or None,
            "username": config.get("EMAIL_HOST_USER") or "",
            "password": config.get("EMAIL_HOST_PASSWORD") or "",
            "use_tls": bool(config.get("EMAIL_USE_TLS")),
            "use_ssl": bool(config.get("EMAIL_USE_SSL")),
            "timeout": 10,
        }
    elif backend.endswith("filebased.EmailBackend"):
        options = {"file_path": _mail_folder(raw)}
    elif backend.endswith("console.EmailBackend"):
        backend, options = "core.mail.ReadableConsoleBackend", {}
    else:
        options = {}
    return {"BACKEND": backend, "OPTIONS": options}


MAILERS = {"default": _mailer("EMAIL_URL", "consolemail://" if DEBUG else "smtp://localhost:25")}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@example.com")

# Security: strict by default, relaxed only for plain-HTTP development.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'self'"],
    "object-src": ["'none'"],
}
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = _bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env.str("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = (env.str("SECURE_PROXY_SSL_HEADER"), "https")

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header is what turns "no credentials" into a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "billing_console.api_auth.MemberTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing console API",
    "DESCRIPTION": "Payment methods, the charge order, invoices and payment attempts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "accounts.models.Account.Status",
        "PaymentMethodKindEnum": "payments.models.PaymentMethod.Kind",
        "PaymentMethodStatusEnum": "payments.models.PaymentMethod.Status",
        "InvoiceStatusEnum": "invoices.models.Invoice.Status",
        "AttemptStatusEnum": "invoices.models.PaymentAttempt.Status",
        "CardKindEnum": ["card"],
        "SepaDebitKindEnum": ["sepa_debit"],
        "AchDebitKindEnum": ["ach_debit"],
        "StripeKindEnum": ["card", "sepa_debit"],
    },
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint narrates each step of every invoice PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Billing.
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="sandbox")
if PAYMENT_GATEWAY not in {"sandbox", "stripe"}:
    raise ImproperlyConfigured(f"PAYMENT_GATEWAY must be one of: sandbox, stripe; not {PAYMENT_GATEWAY!r}.")
# Stripe (payments/gateways/stripe/): the keys are required only when it is the gateway, and then
# start-up stops naming the one that is missing. STRIPE_API_BASE points the client elsewhere (a local
# fake Stripe in tests); STRIPE_JS_URL is the address of Stripe.js for the console's pages.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="").strip()
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="").strip()
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="").strip()
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").strip()
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/").strip()
# While a customer confirms a payment on the authenticate page, no settlement run charges another
# method of that invoice, for up to this long (invoices/authentication.py).
AUTHENTICATION_HOLD_SECONDS = _int("AUTHENTICATION_HOLD_SECONDS", 15 * 60, minimum=60)
# Who the customer authorises to debit a SEPA account: named in the mandate on the add-SEPA page.
BILLING_COMPANY_NAME = env.str("BILLING_COMPANY_NAME", default="Billing console").strip()
if PAYMENT_GATEWAY == "stripe":
    for _name, _prefixes in (
        ("STRIPE_SECRET_KEY", ("sk_", "rk_")),
        ("STRIPE_PUBLISHABLE_KEY", ("pk_",)),
        ("STRIPE_WEBHOOK_SECRET", ("whsec_",)),
    ):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"PAYMENT_GATEWAY=stripe needs {_name}; it is not set.")
        if not globals()[_name].startswith(_prefixes):
            raise ImproperlyConfigured(f"{_name} must start with {' or '.join(_prefixes)}.")
    _api_base = urllib.parse.urlsplit(STRIPE_API_BASE)
    if not (
        _api_base.scheme == "https"
        or (_api_base.scheme == "http" and _api_base.hostname in {"127.0.0.1", "localhost", "::1"})
    ):
        raise ImproperlyConfigured(
            "STRIPE_API_BASE must be an https:// address (http:// only on this machine), "
            f"not {STRIPE_API_BASE!r}."
        )
GATEWAY_TIMEOUT_SECONDS = _int("GATEWAY_TIMEOUT_SECONDS", 30, minimum=1)
# Requests per second to the processor, shared by every process on every host (one token bucket, in
# Redis when CACHE_URL is Redis, else in the database). 0: the processor's own default (Stripe: 80 with
# a live key, 20 with a test key, under its limits of about 100 and 25).
GATEWAY_MAX_REQUESTS_PER_SECOND = _int("GATEWAY_MAX_REQUESTS_PER_SECOND", 0)
SANDBOX_LATENCY_MS = _int("SANDBOX_LATENCY_MS", 0)
SANDBOX_CLEARING_SECONDS = _int("SANDBOX_CLEARING_SECONDS", 0)
SANDBOX_SLOW_REPLY_SECONDS = _int("SANDBOX_SLOW_REPLY_SECONDS", 2)
# The sandbox signs its webhooks with this secret; by default one derived from SECRET_KEY, so each
# deployment has its own without configuring it. They are posted to SANDBOX_WEBHOOK_URL.
SANDBOX_WEBHOOK_SECRET = (
    env.str("SANDBOX_WEBHOOK_SECRET", default="")
    or hmac.new(SECRET_KEY.encode(), b"sandbox-webhook-secret", hashlib.sha256).hexdigest()
)
SANDBOX_WEBHOOK_URL = env.str("SANDBOX_WEBHOOK_URL", default=f"{SITE_URL}/webhooks/sandbox/")
if not SANDBOX_WEBHOOK_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"SANDBOX_WEBHOOK_URL must be an http:// or https:// URL, not {SANDBOX_WEBHOOK_URL!r}."
    )
# The largest invoice, in major units of its currency (each currency's own minor unit applies: 1,000,000
# is 100,000,000 US cents, 1,000,000,000 Kuwaiti fils). Capped so that, in thousandths, it stays a
# whole number JavaScript clients read exactly (below 2**53).
BILLING_MAX_INVOICE_AMOUNT = _int("BILLING_MAX_INVOICE_AMOUNT", 1_000_000, minimum=1)
if BILLING_MAX_INVOICE_AMOUNT > 10**12:
    raise ImproperlyConfigured(
        f"BILLING_MAX_INVOICE_AMOUNT must be at most 1000000000000, not {BILLING_MAX_INVOICE_AMOUNT}."
    )
BILLING_MAX_BACKUPS = _int("BILLING_MAX_BACKUPS", 3)
# Who issues the invoices, as their PDFs and receipts show it. The address takes "\n" between lines.
BILLING_SELLER_NAME = env.str("BILLING_SELLER_NAME", default="Billing Console")
BILLING_SELLER_ADDRESS = env.str("BILLING_SELLER_ADDRESS", default="", multiline=True)
BILLING_SELLER_EMAIL = env.str("BILLING_SELLER_EMAIL", default=DEFAULT_FROM_EMAIL)
BILLING_SELLER_TAX_ID = env.str("BILLING_SELLER_TAX_ID", default="")
BILLING_REATTEMPT_CAP = _int("BILLING_REATTEMPT_CAP", 15, minimum=1)
BILLING_REATTEMPT_WINDOW_DAYS = _int("BILLING_REATTEMPT_WINDOW_DAYS", 30, minimum=1)
BILLING_LEASE_SECONDS = _int("BILLING_LEASE_SECONDS", 20, minimum=5)
BILLING_ADD_METHOD_FAILURES_PER_HOUR = _int("BILLING_ADD_METHOD_FAILURES_PER_HOUR", 5, minimum=1)
_retry_raw = env.str("BILLING_RETRY_DAYS", default="1,3,5,7")
try:
    BILLING_RETRY_DAYS = [int(part) for part in _retry_raw.split(",") if part.strip()]
except ValueError:
    raise ImproperlyConfigured(
        f"BILLING_RETRY_DAYS must be comma-separated whole days, not {_retry_raw!r}."
    ) from None
if (
    not BILLING_RETRY_DAYS
    or sorted(set(BILLING_RETRY_DAYS)) != BILLING_RETRY_DAYS
    or BILLING_RETRY_DAYS[0] < 0
):
    raise ImproperlyConfigured(
        f"BILLING_RETRY_DAYS must be increasing days after the first failure, not {_retry_raw!r}."
    )
