"""The one settings file. Every knob is a LEB_* environment variable with a
safe local default; docs/configuration.md lists them all."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "insecure-local-development-key-change-me"


def env(name: str, default: str = "") -> str:
    return os.environ.get(f"LEB_{name}", default)


def env_bool(name: str, default: bool) -> bool:
    raw = env(name, "")
    if not raw:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env("SECRET_KEY", DEFAULT_SECRET_KEY)
# Old keys still accepted for signatures (receipt QR codes, tokens) after a rotation.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")
# Production is any process not explicitly in debug mode: it must have a real secret.
PRODUCTION = env_bool("PRODUCTION", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("LEB_PRODUCTION=1 refuses to start with LEB_DEBUG on.")
if (PRODUCTION or not DEBUG) and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured(
        "Refusing to start without debug and with the default LEB_SECRET_KEY."
    )
if PRODUCTION and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("LEB_SECRET_KEY must be at least 32 characters in production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
TIME_ZONE = env("TIME_ZONE", "Asia/Hong_Kong")
DEFAULT_REGION = env("DEFAULT_REGION", "HK").upper()
USE_TZ = True
USE_I18N = True

INSTALLED_APPS = [
    # Django's admin with the back office's first page (the dashboard).
    "leb.backoffice.site.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "leb.audit",
    "leb.security",
    "leb.accounts",
    "leb.ledger",
    "leb.lines",
    "leb.catalog",
    "leb.topups",
    "leb.jobs",
    "leb.ops",
    "leb.payments",
    "leb.announcements",
    "leb.portal",
    "leb.api",
    "leb.sms",
    "leb.mylines",
    "leb.webtopup",
    "leb.receipts",
    "leb.support",
    "leb.notifications",
    "leb.provisioning",
    "leb.reminders",
    "leb.planner",
    "leb.autokeep",
    "leb.vouchers",
    "leb.agents",
    "leb.finance",
    "leb.telephony",
    "leb.simulation",
    "leb.torture",
    "leb.observability",
    "leb.exports",
    # Last: after migrate it puts the staff roles in step with every app's permissions.
    "leb.backoffice",
]

MIDDLEWARE = [
    # First: request id, metrics and /healthz, /readyz, /metrics (before the host check).
    "leb.observability.middleware.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "leb.portal.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # leb.common.middleware: Django's and django-otp's own, except that an
    # API call without the session cookie skips them (no session, no user).
    "leb.common.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "leb.common.middleware.AuthenticationMiddleware",
    "leb.common.middleware.OTPMiddleware",
    "leb.accounts.middleware.SessionEpochMiddleware",
    "leb.common.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so its process_exception sees a view's error first.
    "leb.portal.middleware.BusyDatabaseMiddleware",
]

ROOT_URLCONF = "leb.urls"
WSGI_APPLICATION = "leb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "leb" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ]
        },
    }
]

# --- Database -------------------------------------------------------------
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'leb.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=int(env("DB_CONN_MAX_AGE", "60")))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Django ignores select_for_update on SQLite: an IMMEDIATE transaction takes
    # the write lock at BEGIN, which is what serialises writers there.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": int(env("SQLITE_BUSY_TIMEOUT", "20")),
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
        ),
    }
else:
    _db.setdefault("OPTIONS", {})
    # A request waits at most this long for a row another transaction holds;
    # then it is told to try again (leb.common.transactions.database_busy)
    # and its transaction rolls back whole. 0: wait as long as it takes.
    _lock_timeout_ms = int(env("DB_LOCK_TIMEOUT_MS", "10000"))
    if _lock_timeout_ms and "options" not in _db["OPTIONS"]:
        _db["OPTIONS"]["options"] = f"-c lock_timeout={_lock_timeout_ms}"
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security ---------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "leb.accounts.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
]
# Cookies travel over https only outside debug mode (docs/deployment.md, "HTTPS").
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_HTTPONLY = True  # no script reads it
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"


def _proxy_ssl_header(raw: str) -> tuple[str, str] | None:
    """LEB_PROXY_SSL_HEADER: the header the TLS proxy sets on https requests,
    "X-Forwarded-Proto" (value https) or "Name: value"; empty: none."""
    name, _colon, value = raw.partition(":")
    if not name.strip():
        return None
    meta = "HTTP_" + name.strip().upper().replace("-", "_")
    return meta, value.strip() or "https"


# The proxy in front of leb terminates TLS and says so in this header; it must
# overwrite the header a client sent, or a client could claim https.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(
    env("PROXY_SSL_HEADER", "" if DEBUG else "X-Forwarded-Proto")
)
# Production answers plain http with a redirect to https. The probes
# (/healthz, /readyz, /metrics) answer before SecurityMiddleware, so a load
# balancer may still probe by plain http.
SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT", PRODUCTION)
if not DEBUG:
    SECURE_HSTS_SECONDS = int(env("HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", False)
# Silenced checks, each with its reason (docs/deployment.md, "HTTPS"):
SILENCED_SYSTEM_CHECKS = []
if not env_bool("HSTS_PRELOAD", False):
    # security.W021 (no HSTS preload): asking browsers to preload the domain is
    # a commitment for the whole registrable domain and every subdomain, hard
    # to take back, so it is the operator's decision: LEB_HSTS_PRELOAD=1.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- Languages ----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("zh-hans", _("Simplified Chinese")),
    ("zh-hant", _("Traditional Chinese")),
    ("en", _("English")),
]
LOCALE_PATHS = [BASE_DIR / "leb" / "locale"]

# --- Static -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Background jobs ----------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# Periodic jobs: interval in seconds (see leb/jobs/schedule.py).
SWEEP_INTERVAL = int(env("SWEEP_INTERVAL", "60"))
RECOVERY_INTERVAL = int(env("RECOVERY_INTERVAL", "60"))
ORDER_EXPIRY_INTERVAL = int(env("ORDER_EXPIRY_INTERVAL", "60"))

# --- Exports (docs/exports.md) ---------------------------------------------------
# Folder of the export files; empty: VAR_DIR/exports.
EXPORTS_DIR = env("EXPORTS_DIR", "")
EXPORTS_CHUNK_SIZE = int(env("EXPORTS_CHUNK_SIZE", "1000"))  # rows read and written at a time
EXPORTS_RETENTION_DAYS = int(env("EXPORTS_RETENTION_DAYS", "7"))  # then job and file are deleted
EXPORTS_PURGE_INTERVAL = int(env("EXPORTS_PURGE_INTERVAL", "3600"))  # seconds between purges
if EXPORTS_CHUNK_SIZE < 1 or EXPORTS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        "LEB_EXPORTS_CHUNK_SIZE and LEB_EXPORTS_RETENTION_DAYS must be at least 1."
    )

# --- Domain -----------------------------------------------------------------
# Minutes a quote, and an unpaid order made from it, stays good.
QUOTE_TTL_MINUTES = int(env("QUOTE_TTL_MINUTES", "15"))
ORDER_PAYMENT_TTL_MINUTES = int(env("ORDER_PAYMENT_TTL_MINUTES", "30"))
# Rows a promotion's budget is split into, so concurrent top-ups reserve from different rows.
PROMOTION_BUDGET_SLICES = int(env("PROMOTION_BUDGET_SLICES", "16"))
# A paid order still unfulfilled after this many seconds is finished by recovery.
RECOVERY_GRACE_SECONDS = int(env("RECOVERY_GRACE_SECONDS", "30"))
SWEEP_BATCH_SIZE = int(env("SWEEP_BATCH_SIZE", "1000"))

# --- Cache (rate limits) ----------------------------------------------------
# A file cache is shared by every process on one machine only. With several
# machines set LEB_REDIS_URL: rate limits and cached pages are then shared by
# every web and worker process.
REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "leb"),
            # A Redis outage fails a request in seconds instead of hanging it.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": env("CACHE_BACKEND", "django.core.cache.backends.filebased.FileBasedCache"),
            "LOCATION": env("CACHE_LOCATION", str(VAR_DIR / "cache")),
        }
    }

# --- Observability ------------------------------------------------------------
# /metrics answers a bearer token or a direct (not proxied) client in these networks.
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
# Seconds the metrics read from the database are reused between scrapes.
METRICS_DB_CACHE_SECONDS = int(env("METRICS_DB_CACHE_SECONDS", "10"))
LOG_FORMAT = env("LOG_FORMAT", "json" if PRODUCTION else "text").strip().lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LEB_LOG_FORMAT must be json or text.")
# One log line per request (logger leb.http), with its request id and duration.
LOG_REQUESTS = env_bool("LOG_REQUESTS", LOG_FORMAT == "json")

# --- REST API ---------------------------------------------------------------
API_PROBLEM_BASE_URL = env("API_PROBLEM_BASE_URL", "https://leb.example/problems/")
API_LINE_CHECK_RATE = env("API_LINE_CHECK_RATE", "10/m")  # empty: no limit
# Trusted proxies in front of leb, each appending to X-Forwarded-For: the
# client address every rate limit and lockout counts (leb.common.ratelimit).
# LEB_API_NUM_PROXIES is its earlier name, still read.
NUM_PROXIES = int(env("NUM_PROXIES", env("API_NUM_PROXIES", "0")))

# --- Portal -----------------------------------------------------------------
PAYMENT_FORM_ACTION_HOSTS = env_list("PAYMENT_FORM_ACTION_HOSTS", "")  # extra CSP form-action hosts
CSP_EXEMPT_PATH_PREFIXES = env_list("CSP_EXEMPT_PATH_PREFIXES", "/api/docs")
PORTAL_QUICK_CHECK_RATE = env("PORTAL_QUICK_CHECK_RATE", "10/60")  # requests/seconds per IP
ANNOUNCEMENT_BANNER_CACHE_SECONDS = int(env("ANNOUNCEMENT_BANNER_CACHE_SECONDS", "60"))

# --- Payments ---------------------------------------------------------------
PAYMENT_PROVIDER = env("PAYMENT_PROVIDER", "sandbox")
PAYMENT_PROVIDERS = env_list("PAYMENT_PROVIDERS", PAYMENT_PROVIDER)
PAYMENTS_SANDBOX_WEBHOOK_SECRET = env(
    "PAYMENTS_SANDBOX_WEBHOOK_SECRET", ""
)  # empty: derived from SECRET_KEY
# How the sandbox gateway answers refunds: instant, webhook or unavailable.
PAYMENTS_SANDBOX_REFUNDS = env("PAYMENTS_SANDBOX_REFUNDS", "instant")
PAYMENTS_WEBHOOK_MAX_ATTEMPTS = int(env("PAYMENTS_WEBHOOK_MAX_ATTEMPTS", "8"))
PAYMENTS_WEBHOOK_RETRY_SECONDS = int(env("PAYMENTS_WEBHOOK_RETRY_SECONDS", "30"))
# How long a call to a payment provider may take to connect and to answer
# (seconds); past it the payer is told to try again and nothing is charged twice.
PAYMENT_CONNECT_TIMEOUT = float(env("PAYMENT_CONNECT_TIMEOUT", "5"))
PAYMENT_READ_TIMEOUT = float(env("PAYMENT_READ_TIMEOUT", "30"))
STRIPE_API_BASE = env("STRIPE_API_BASE", "https://api.stripe.com")

# Open payment attempts are checked with their provider this long after they
# started, for this many hours, every interval (a lost webhook, a payer who
# never came back).
PAYMENTS_RECONCILE_INTERVAL = int(env("PAYMENTS_RECONCILE_INTERVAL", "120"))
PAYMENTS_RECONCILE_AFTER_SECONDS = int(env("PAYMENTS_RECONCILE_AFTER_SECONDS", "600"))
PAYMENTS_RECONCILE_WINDOW_HOURS = int(env("PAYMENTS_RECONCILE_WINDOW_HOURS", "48"))
# Refunds the provider answered "pending" whose webhook never came: asked
# about again once they have waited this long.
REFUNDS_RECONCILE_INTERVAL = int(env("REFUNDS_RECONCILE_INTERVAL", "900"))
REFUNDS_RECONCILE_AFTER_SECONDS = int(env("REFUNDS_RECONCILE_AFTER_SECONDS", "3600"))
# The daily settlement compares yesterday (in TIME_ZONE) with each provider's
# books; this is how often the job looks (it replaces yesterday's run).
SETTLEMENT_INTERVAL = int(env("SETTLEMENT_INTERVAL", "21600"))
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "")
if (
    PRODUCTION
    and "stripe" in PAYMENT_PROVIDERS
    and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)
):
    raise ImproperlyConfigured(
        "Stripe is enabled: set LEB_STRIPE_SECRET_KEY and LEB_STRIPE_WEBHOOK_SECRET."
    )

# --- Online top-up -------------------------------------------------------------
WEBTOPUP_TOKEN_MINUTES = int(
    env("WEBTOPUP_TOKEN_MINUTES", "30")
)  # how long a top-up page link stays usable

# --- Support ----------------------------------------------------------------------
SUPPORT_TICKET_RATE = env(
    "SUPPORT_TICKET_RATE", "5/3600"
)  # new tickets per IP/user: requests/seconds
SUPPORT_REPLY_RATE = env("SUPPORT_REPLY_RATE", "30/3600")
SUPPORT_GUEST_LINK_DAYS = int(env("SUPPORT_GUEST_LINK_DAYS", "180"))


def _refund_limits(raw: str) -> dict[str, int]:
    limits = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        currency, _sep, amount = item.partition("=")
        if not currency.strip() or not amount.strip().isdigit():
            raise ImproperlyConfigured(
                "LEB_SUPPORT_REFUND_LIMITS: write CURRENCY=minor units, e.g. HKD=20000,GBP=2000."
            )
        limits[currency.strip().upper()] = int(amount)
    return limits


# The largest top-up (price, in minor units) the support role may refund, per
# currency; a currency not listed: none. Finance refunds any amount.
SUPPORT_REFUND_LIMITS = _refund_limits(env("SUPPORT_REFUND_LIMITS", "HKD=20000,GBP=2000"))

# --- SMS ----------------------------------------------------------------------
SMS_BACKEND = env("SMS_BACKEND", "leb.sms.backends.console.SmsBackend")
SMS_HTTP_URL = env("SMS_HTTP_URL", "")
SMS_HTTP_TOKEN = env("SMS_HTTP_TOKEN", "")
SMS_HTTP_TIMEOUT = float(env("SMS_HTTP_TIMEOUT", "10"))
SMS_SENDER = env("SMS_SENDER", "")
MYLINES_BIND_CODE_MINUTES = int(env("MYLINES_BIND_CODE_MINUTES", "10"))
MYLINES_BIND_SMS_PER_HOUR = int(env("MYLINES_BIND_SMS_PER_HOUR", "5"))

# --- Email ------------------------------------------------------------------
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds an SMTP connection may take to connect or answer: a server that
# stalls fails the attempt (retried later) instead of holding a worker forever.
EMAIL_TIMEOUT = float(env("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "leb <noreply@localhost>")

# --- Site address --------------------------------------------------------------
# The public address of the site, without a trailing slash: payment return
# URLs, webhooks, links in messages, receipt QR codes and the CSP use it, never
# a request's Host header. Unset, it follows the address `leb serve` listens on
# (LEB_BIND, which `leb serve --bind` passes on), with 0.0.0.0 shown as
# 127.0.0.1: right for development; production sets it (a system check warns).
DEFAULT_BIND = "127.0.0.1:8000"
BIND = env("BIND", DEFAULT_BIND)


def site_url_for_bind(bind: str) -> str:
    host, sep, port = bind.strip().rpartition(":")
    if not sep or bind.startswith(("unix:", "fd://")) or not port.isdigit():
        host, port = DEFAULT_BIND.split(":")
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 (an address to show, not to bind)
        host = "127.0.0.1"
    return f"http://{host}:{port}"


SITE_URL_FROM_ENV = bool(env("SITE_URL").strip())
SITE_URL = (env("SITE_URL").strip() or site_url_for_bind(BIND)).rstrip("/")
# Who sells the top-ups (named on receipts as the seller) unless an agent did.
OPERATOR_NAME = env("OPERATOR_NAME", "leb")
# Days a guest's signed receipt link (from the payment result page) works.
RECEIPT_GUEST_LINK_DAYS = int(env("RECEIPT_GUEST_LINK_DAYS", "30"))

# --- Notifications (outbox, channels, quiet hours) ----------------------------

NOTIFICATIONS_DELIVERY_INTERVAL = int(env("NOTIFICATIONS_DELIVERY_INTERVAL", "60"))
NOTIFICATIONS_BATCH_SIZE = int(env("NOTIFICATIONS_BATCH_SIZE", "100"))
NOTIFICATIONS_MAX_ATTEMPTS = int(env("NOTIFICATIONS_MAX_ATTEMPTS", "6"))
NOTIFICATIONS_RETRY_SECONDS = int(env("NOTIFICATIONS_RETRY_SECONDS", "60"))
NOTIFICATIONS_CLAIM_SECONDS = int(env("NOTIFICATIONS_CLAIM_SECONDS", "300"))
NOTIFICATIONS_DEADLINE_MARGIN = int(env("NOTIFICATIONS_DEADLINE_MARGIN", "900"))
NOTIFICATIONS_WEBHOOK_TIMEOUT = float(env("NOTIFICATIONS_WEBHOOK_TIMEOUT", "5"))
NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = env_bool("NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE", False)
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", "")
TWILIO_SMS_FROM = env("TWILIO_SMS_FROM", "")
TWILIO_MESSAGING_SERVICE_SID = env("TWILIO_MESSAGING_SERVICE_SID", "")

# --- Reminders and calendar feeds ----------------------------------------------
# Seconds between reminder scans (leb/jobs/schedule.py) and lines per scan transaction.
REMINDERS_INTERVAL = int(env("REMINDERS_INTERVAL", "300"))
REMINDERS_BATCH_SIZE = int(env("REMINDERS_BATCH_SIZE", "1000"))
# Days before the number is lost (termination) to warn; comma-separated.
REMINDERS_LOSS_WARNING_DAYS = [
    int(days) for days in env_list("REMINDERS_LOSS_WARNING_DAYS", "7,1") if days.isdigit()
]
# Each scan looks back this far past the previous one (covers late commits).
REMINDERS_OVERLAP_MINUTES = int(env("REMINDERS_OVERLAP_MINUTES", "60"))
# How often calendar apps are asked to refresh a line's feed.
REMINDERS_CALENDAR_REFRESH_HOURS = int(env("REMINDERS_CALENDAR_REFRESH_HOURS", "6"))

# --- Auto-keep and saved payment methods ---------------------------------------
AUTOKEEP_INTERVAL = int(env("AUTOKEEP_INTERVAL", "300"))
AUTOKEEP_MAX_ATTEMPTS = int(env("AUTOKEEP_MAX_ATTEMPTS", "3"))
AUTOKEEP_RETRY_HOURS = int(env("AUTOKEEP_RETRY_HOURS", "24"))
AUTOKEEP_MAX_DAYS_BEFORE = int(env("AUTOKEEP_MAX_DAYS_BEFORE", "60"))
AUTOKEEP_HORIZON_DAYS = int(env("AUTOKEEP_HORIZON_DAYS", "365"))
AUTOKEEP_CARD_WARNING_DAYS = int(env("AUTOKEEP_CARD_WARNING_DAYS", "30"))
AUTOKEEP_BATCH_SIZE = int(env("AUTOKEEP_BATCH_SIZE", "200"))

# --- Vouchers -----------------------------------------------------------------
# Vouchers are stored as HMAC-SHA256(pepper, PIN). Changing the pepper makes every
# PIN already printed unusable: set it once, keep it secret, never rotate it.
VOUCHER_PIN_PEPPER = env("VOUCHER_PIN_PEPPER", "")
if PRODUCTION and len(VOUCHER_PIN_PEPPER) < 32:
    raise ImproperlyConfigured(
        "LEB_VOUCHER_PIN_PEPPER must be set (at least 32 characters) in production."
    )
# Empty (local use only): leb.vouchers.pins derives one from SECRET_KEY.
VOUCHER_EXPIRY_INTERVAL = int(env("VOUCHER_EXPIRY_INTERVAL", "3600"))  # seconds between runs
VOUCHER_API_RATE = env(
    "VOUCHER_API_RATE", "20/m"
)  # redemptions per client address; empty: no limit

# --- Telephony (IVR, USSD) ------------------------------------------------------
# Base URL Twilio and the USSD gateway call (the URL Twilio signs); empty: LEB_SITE_URL.
PHONE_PUBLIC_URL = env("PHONE_PUBLIC_URL", "")
# JSON {"cmn": ["voice", "language"], "yue": [...], "en": [...]}; empty: built-in voices.
IVR_VOICES = env("IVR_VOICES", "")
IVR_SUPPORT_NUMBER = env("IVR_SUPPORT_NUMBER", "")  # E.164; empty: hours and website are read out
IVR_SUPPORT_HOURS = env("IVR_SUPPORT_HOURS", "")  # JSON {"cmn": "...", "yue": "...", "en": "..."}
IVR_CALL_CHARGE_NOTICE = env("IVR_CALL_CHARGE_NOTICE", "")  # JSON per language; empty: none
IVR_SESSION_MINUTES = int(env("IVR_SESSION_MINUTES", "30"))
IVR_GATHER_TIMEOUT = int(env("IVR_GATHER_TIMEOUT", "6"))  # seconds to wait for a key
IVR_SESSION_PURGE_INTERVAL = int(env("IVR_SESSION_PURGE_INTERVAL", "600"))
USSD_SECRET = env("USSD_SECRET", "")  # HTTP Basic password of the USSD gateway; empty: refused
USSD_ALLOWED_IPS = env_list("USSD_ALLOWED_IPS", "")  # empty: any address with the secret
USSD_DEFAULT_LANGUAGE = env("USSD_DEFAULT_LANGUAGE", "en")
USSD_MAX_CHARS = int(env("USSD_MAX_CHARS", "182"))

# --- Accounts -------------------------------------------------------------------
# How long a code texted to verify a number or reset a password stays valid.
ACCOUNTS_CODE_MINUTES = int(env("ACCOUNTS_CODE_MINUTES", "10"))
# How long the link that verifies an email address works.
ACCOUNTS_EMAIL_LINK_HOURS = int(env("ACCOUNTS_EMAIL_LINK_HOURS", "72"))

AUTHENTICATION_BACKENDS = ["leb.accounts.backends.EmailOrPhoneBackend"]
LOGIN_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "leb.observability.logs.JsonFormatter"},
    },
    "filters": {"request_id": {"()": "leb.observability.logs.RequestIdFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Agents ---------------------------------------------------------------------
# Pepper the agents' API key and callback secrets are derived with; required in
# production. Empty (local use only): derived from SECRET_KEY. Changing it
# invalidates every agent key.
AGENTS_KEY_PEPPER = env("AGENTS_KEY_PEPPER", "")
if PRODUCTION and len(AGENTS_KEY_PEPPER) < 32:
    raise ImproperlyConfigured(
        "LEB_AGENTS_KEY_PEPPER must be set (at least 32 characters) in production."
    )
AGENTS_SIGNATURE_WINDOW_SECONDS = int(env("AGENTS_SIGNATURE_WINDOW_SECONDS", "300"))
AGENTS_API_RATE = env("AGENTS_API_RATE", "120/m")  # requests per API key; empty: no limit
AGENTS_TWO_STEP_MINUTES = int(env("AGENTS_TWO_STEP_MINUTES", "15"))  # time to confirm
AGENTS_REPEAT_WINDOW_MINUTES = int(env("AGENTS_REPEAT_WINDOW_MINUTES", "10"))
AGENTS_KEY_OVERLAP_HOURS = int(env("AGENTS_KEY_OVERLAP_HOURS", "72"))  # old key after rotation
AGENTS_EXPIRY_INTERVAL = int(env("AGENTS_EXPIRY_INTERVAL", "60"))  # seconds between runs
# The public "is this agent authorised?" check: searches per client address.
AGENTS_VERIFY_RATE = env("AGENTS_VERIFY_RATE", "20/60")  # searches/seconds, page
API_AGENT_VERIFY_RATE = env("API_AGENT_VERIFY_RATE", "20/m")
API_AGENT_LIST_RATE = env("API_AGENT_LIST_RATE", "30/m")

# --- eSIM provisioning (GSMA SGP.22 ES2+) ------------------------------------------
# The operator's SM-DP+ ES2+ base URL, e.g. https://smdp.example.com; empty: the
# built-in simulator (when enabled) answers in-process. See docs/esim.md.
SMDP_URL = env("SMDP_URL", "").strip().rstrip("/")
SMDP_REQUESTER_ID = env("SMDP_REQUESTER_ID", "leb")  # functionRequesterIdentifier
SMDP_CLIENT_CERT = env("SMDP_CLIENT_CERT", "")  # PEM file: leb's TLS client certificate
SMDP_CLIENT_KEY = env("SMDP_CLIENT_KEY", "")  # PEM file: its private key
SMDP_CA_BUNDLE = env("SMDP_CA_BUNDLE", "")  # PEM file: CAs trusted for the SM-DP+; empty: system
SMDP_CONNECT_TIMEOUT = float(env("SMDP_CONNECT_TIMEOUT", "5"))
SMDP_READ_TIMEOUT = float(env("SMDP_READ_TIMEOUT", "20"))
SMDP_RETRIES = int(env("SMDP_RETRIES", "2"))  # resends of one call (same functionCallIdentifier)
SMDP_RELEASE_FLAG = env_bool("SMDP_RELEASE_FLAG", True)  # confirmOrder releases at once
SMDP_SMDS_ADDRESS = env("SMDP_SMDS_ADDRESS", "")  # SM-DS for push discovery; empty: none
# Shared secret the SM-DP+ sends (header X-Leb-Notification-Secret) with
# handleDownloadProgressInfo; empty: notifications are refused.
SMDP_NOTIFICATION_SECRET = env("SMDP_NOTIFICATION_SECRET", "")
# The built-in SM-DP+ simulator (docs/esim.md): on by default in debug only, never in production.
SMDP_SIMULATOR = env_bool("SMDP_SIMULATOR", DEBUG and not PRODUCTION)
if PRODUCTION and SMDP_SIMULATOR:
    raise ImproperlyConfigured("LEB_SMDP_SIMULATOR cannot be enabled in production.")
if PRODUCTION and not SMDP_URL:
    raise ImproperlyConfigured("LEB_SMDP_URL must be set in production.")
if PRODUCTION and len(SMDP_NOTIFICATION_SECRET) < 32:
    raise ImproperlyConfigured(
        "LEB_SMDP_NOTIFICATION_SECRET must be set (at least 32 characters) in production."
    )
ESIM_REDOWNLOADS_PER_30_DAYS = int(env("ESIM_REDOWNLOADS_PER_30_DAYS", "2"))
# Real-name registration: document numbers are stored as HMAC-SHA256(pepper, number).
# Required in production; empty (local use only): derived from SECRET_KEY.
REAL_NAME_PEPPER = env("REAL_NAME_PEPPER", "")
if PRODUCTION and len(REAL_NAME_PEPPER) < 32:
    raise ImproperlyConfigured(
        "LEB_REAL_NAME_PEPPER must be set (at least 32 characters) in production."
    )
