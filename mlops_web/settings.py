"""The one settings module. Every value that varies between machines comes from an
environment variable; a wrong value stops start-up with a message naming the variable.

The embedded default (``make run``) needs no server: SQLite for the database and the
SQLite Celery transport in ``apps.core.broker``. Production sets ``DATABASE_URL``
(PostgreSQL) and ``CELERY_BROKER_URL`` (Redis).
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MLOPS_VAR_DIR", BASE_DIR / "var"))
APP_VERSION = "0.1.0"


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_env() -> dict:
    raw = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    scheme = urlparse(raw).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgresql:// or sqlite:/// URL, got scheme {scheme!r} in {raw!r}"
        )
    try:
        config = dj_database_url.parse(raw, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    except Exception as exc:  # dj_database_url raises several types for a malformed URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL ({exc}): {raw!r}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"DATABASE_URL names no SQLite file: {raw!r}")
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["CONN_MAX_AGE"] = 0
        # WAL lets the web server read while the worker writes; IMMEDIATE takes the write
        # lock at BEGIN so concurrent writers queue instead of failing with "locked".
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"DATABASE_URL names no database: {raw!r}")
        config["CONN_HEALTH_CHECKS"] = True
    return config


def broker_from_env() -> str:
    raw = env_str("CELERY_BROKER_URL", f"sqlite:///{VAR_DIR / 'broker.sqlite3'}")
    scheme = urlparse(raw).scheme
    if scheme not in {"redis", "rediss", "sqlite", "memory"}:
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL must be a redis://, rediss:// or sqlite:/// URL, got {raw!r}"
        )
    if scheme == "sqlite":
        path = raw.split("://", 1)[1].lstrip("/")
        if raw.startswith("sqlite:////"):
            path = "/" + path
        if not path:
            raise ImproperlyConfigured(f"CELERY_BROKER_URL names no SQLite file: {raw!r}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return raw


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. It is required when DEBUG is off; set SECRET_KEY to a long random string."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's host names when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",  # before accounts: its failure counting runs before accounts' audit receiver
    "apps.core",
    "apps.accounts",
    "apps.datasets",
    "apps.experiments",
    "apps.registry",
    "apps.tracking",
    "apps.deployments",
    "apps.monitoring",
    "apps.maturity",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.core.middleware.NulCharacterRefusalMiddleware",
    # These two decide before the CSRF check reads the body (and parses a multipart one):
    # anonymous callers of a page are sent to the login first, and the upload guard refuses
    # a body larger than its address allows and files where none are expected.
    "apps.core.middleware.SiteLoginRequiredMiddleware",
    "apps.core.uploads.UploadGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.middleware.RequestLogMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mlops_web.urls"
WSGI_APPLICATION = "mlops_web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.navigation",
                "apps.registry.context_processors.pending_promotions",
            ],
            "builtins": ["apps.core.templatetags.ui"],
        },
    }
]

DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out username and address first
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "apps.core.staticfinders.PlotlyFinder",
]
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

MEDIA_ROOT = Path(env_str("STORAGE_DIR", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
FILE_UPLOAD_HANDLERS = ["apps.core.uploads.HashingSizeLimitedUploadHandler"]
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # also the largest body an address without uploads reads
DATA_UPLOAD_MAX_NUMBER_FILES = 1
DATASET_MAX_UPLOAD_BYTES = env_int("DATASET_MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1)
# the addresses that take one file (and bodies up to DATASET_MAX_UPLOAD_BYTES + 1 MiB)
UPLOAD_URL_NAMES = ["datasets:upload", "api:dataset_version_upload", "deployments:batch_upload"]
# What a table may decode to, judged from a Parquet footer before reading and counted while a
# CSV streams: a 2 MB compressed file can hold 100M rows. The worker holds the whole table.
DATASET_MAX_ROWS = env_int("DATASET_MAX_ROWS", 5_000_000, minimum=1)
DATASET_MAX_CELLS = env_int("DATASET_MAX_CELLS", 100_000_000, minimum=1)
DATASET_MAX_COLUMNS = env_int("DATASET_MAX_COLUMNS", 2000, minimum=1)

# Upper bounds on the hyperparameters whose cost grows with their value (one launch must not
# hold a worker for days); checked where the catalog validates parameters.
TRAINING_PARAM_LIMITS = {
    "n_estimators": env_int("TRAINING_MAX_N_ESTIMATORS", 1000, minimum=1),
    "max_iter": env_int("TRAINING_MAX_ITER", 10_000, minimum=1),
    "max_depth": env_int("TRAINING_MAX_DEPTH", 100, minimum=1),
    "max_leaf_nodes": env_int("TRAINING_MAX_LEAF_NODES", 10_000, minimum=2),
    "n_neighbors": env_int("TRAINING_MAX_NEIGHBORS", 1000, minimum=1),
}
TRAINING_MAX_GRID_CANDIDATES = env_int("TRAINING_MAX_GRID_CANDIDATES", 50, minimum=1)
# One file uploaded by the MLflow client (/mlflow/api/2.0/mlflow-artifacts/artifacts/...), streamed to storage.
TRACKING_ARTIFACT_MAX_BYTES = env_int("TRACKING_ARTIFACT_MAX_BYTES", 1024 * 1024 * 1024, minimum=1)
MLFLOW_PREFIX = "/mlflow/"
# Views that stream their raw body themselves, with their own limit (the upload guard lets them have it).
STREAMED_BODY_LIMITS = {"tracking:artifact": TRACKING_ARTIFACT_MAX_BYTES}
# Most rows one batch-scoring file may hold (its job refuses a longer file, logging nothing).
BATCH_MAX_ROWS = env_int("BATCH_MAX_ROWS", 1_000_000, minimum=1)

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mlops@localhost")

# --- security (``manage.py check --deploy`` passes with DEBUG off) -------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_HTTPS_PROXY", False) else None
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- guessing passwords and tokens (django-axes; see apps/accounts/throttle.py) -------
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
API_TOKEN_FAILURE_LIMIT = env_int("API_TOKEN_FAILURE_LIMIT", 20, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1))
AXES_FAILURE_LIMIT = "apps.accounts.throttle.failure_limit"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "apps.accounts.views.lockout_response"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.throttle.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins need no row each; failures are audited
# how many proxies in front append to X-Forwarded-For (0: the client connects directly)
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.HasRole"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ApiSchema",
    "EXCEPTION_HANDLER": "apps.core.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MLOps dashboard API",
    "DESCRIPTION": "Datasets, experiments, model registry, deployments, monitoring and maturity.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["apps.core.permissions.HasRole"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.add_predict_endpoint",
    ],
    # choice sets that share a field name ("status", "source") get names of their own
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.core.models.JobStatus",
        "DatasetVersionStatusEnum": "apps.datasets.models.VersionStatus",
        "ValidationStatusEnum": "apps.datasets.models.ValidationStatus",
        "DatasetVersionSourceEnum": "apps.datasets.models.VersionSource",
        "RunSourceEnum": "apps.experiments.models.RunSource",
        "StageEnum": "apps.registry.models.Stage",
        "PromotionStatusEnum": "apps.registry.models.PromotionStatus",
        "DeploymentStatusEnum": "apps.deployments.models.DeploymentStatus",
        "DriftReportStatusEnum": "apps.monitoring.models.ReportStatus",
        "PipelineStatusEnum": "apps.maturity.models.PipelineStatus",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ----------------------------------------------------------------------------
CELERY_BROKER_URL = broker_from_env()
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"polling_interval": env_float("CELERY_BROKER_POLL_SECONDS", 0.1, minimum=0.01)}
    if CELERY_BROKER_URL.startswith("sqlite:")
    else {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
        # a broker that drops packets must not hold a web request for the OS's connect timeout
        "socket_connect_timeout": env_float("CELERY_BROKER_CONNECT_TIMEOUT", 3.0, minimum=0.1),
    }
)
# The SQLite transport has no fanout exchange, so broadcast remote control is off there.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = not CELERY_BROKER_URL.startswith("sqlite:")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the Job row, not a result backend, holds the outcome
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("JOB_TIME_LIMIT_SECONDS", 3600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = max(5, CELERY_TASK_TIME_LIMIT - 30)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False

JOB_HEARTBEAT_SECONDS = env_float("JOB_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
JOB_STALE_SECONDS = env_float("JOB_STALE_SECONDS", 60.0, minimum=1.0)
JOB_RESEND_SECONDS = env_float("JOB_RESEND_SECONDS", 600.0, minimum=1.0)
# a job whose message never reached the broker (it was down) is sent again after this long
JOB_UNSENT_GRACE_SECONDS = env_float("JOB_UNSENT_GRACE_SECONDS", 30.0, minimum=0.5)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1)
JOB_RETRY_DELAYS = [int(x) for x in env_list("JOB_RETRY_DELAYS", ["5", "30", "120"]) if x.isdigit()] or [5]
JOB_REAPER_INTERVAL_SECONDS = env_float("JOB_REAPER_INTERVAL_SECONDS", 30.0, minimum=0.5)

# Alert webhooks: https only, to public addresses only, unless an admin widens it (tests do,
# to reach a local server). Networks are CIDRs, e.g. "127.0.0.0/8,10.1.2.0/24".
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)
WEBHOOK_ALLOWED_NETWORKS = env_list("WEBHOOK_ALLOWED_NETWORKS", [])
for _network in WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network such as 10.0.0.0/8") from None
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
WEBHOOK_MAX_RESPONSE_BYTES = env_int("WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024, minimum=0)

MONITOR_SCHEDULER_INTERVAL_SECONDS = env_float("MONITOR_SCHEDULER_INTERVAL_SECONDS", 60.0, minimum=0.5)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "core.reap_stale_jobs", "schedule": JOB_REAPER_INTERVAL_SECONDS},
    "monitoring-schedule": {"task": "monitoring.schedule", "schedule": MONITOR_SCHEDULER_INTERVAL_SECONDS},
    # queues the daily maturity snapshot job once a day (an hourly check, idempotent per day)
    "maturity-daily-snapshot": {"task": "maturity.daily", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- logging: one JSON object per line --------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "mlops_web.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "celery": {"level": "INFO"},
    },
}

DEMO_PASSWORD = env_str("DEMO_PASSWORD")
