"""Settings for FineFoundry Storage, all read from the environment with safe local defaults.

Variables (documented in README.md):
  FINEFOUNDRY_DB            path of the SQLite database (default: finefoundry.db in the project root)
  FINEFOUNDRY_STORAGE_ROOT  training artefacts (default: training_outputs/ beside the database)
  DATABASE_URL              use another database server instead (e.g. postgres://...)
  DJANGO_SECRET_KEY         when absent, one is generated once into .django_secret_key (git-ignored)
  DJANGO_DEBUG              "1"/"true" to enable debug pages (default off)
  DJANGO_ALLOWED_HOSTS      comma-separated (default: loopback only)
  FINEFOUNDRY_LOG_LEVEL     lowest level stored in app_logs (default INFO)
  DJANGO_STATIC_ROOT        where `collectstatic` puts static files (unset: served from the apps)
  FINEFOUNDRY_SEARCH_BACKEND  "like" searches pairs by scanning, without the full-text index (default "auto")
  DJANGO_HTTPS              "1" when served through a TLS proxy: secure cookies, HTTPS redirect, HSTS
  DJANGO_HSTS_SECONDS       HSTS max-age with DJANGO_HTTPS (default 31536000; 0 turns HSTS off)
  FINEFOUNDRY_SQLITE_MMAP_MB  SQLite memory-mapped I/O per connection, in MB (default 0: off)
  FINEFOUNDRY_TOKENIZER     a tokenizer.json the admin's length profile counts tokens with (unset: an estimate)
  FINEFOUNDRY_SCAN_WORKERS  worker processes a big scan uses at most (default 4, never more than the usable cores)
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from django.core.management.utils import get_random_secret_key

from finefoundry.env import env_int

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_or_create_secret_key(path: Path) -> str:
    """Read the generated key, creating it atomically on first use so every process shares it."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    key = get_random_secret_key()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    try:
        # link() fails if another process won the race; then its key is the one to use.
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


# --- Core ---------------------------------------------------------------------------------

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or load_or_create_secret_key(BASE_DIR / ".django_secret_key")
DEBUG = env_flag("DJANGO_DEBUG")
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    # Django's admin with FineFoundry's site (storage.admin_site) as the default one.
    "finefoundry.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_extensions",
    "csp",
    # Background jobs: Django's Tasks API (the django-tasks backport on Django 5.2) with its database
    # backend, so no broker is needed. On Django 6, drop "django_tasks": storage/jobs/tasks.py imports
    # the built-in django.tasks first.
    *([] if importlib.util.find_spec("django.tasks") else ["django_tasks"]),
    "django_tasks_db",
    "storage",
]

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Admin merges and dedupes over more pairs than this run as background jobs; smaller ones finish within
# the request (a merge of 20,000 pairs takes well under a second).
FINEFOUNDRY_INLINE_MAX_PAIRS = env_int("FINEFOUNDRY_INLINE_MAX_PAIRS", 20_000)
# Worker processes a big scan uses at most (never more than the usable cores); 1 scans in the calling process.
FINEFOUNDRY_SCAN_WORKERS = env_int("FINEFOUNDRY_SCAN_WORKERS", 4, minimum=1)
# More modules defining job kinds (storage/jobs/registry.py), comma-separated.
FINEFOUNDRY_JOB_KIND_MODULES = tuple(
    m.strip() for m in os.environ.get("FINEFOUNDRY_JOB_KIND_MODULES", "").split(",") if m.strip()
)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "finefoundry.urls"
WSGI_APPLICATION = "finefoundry.wsgi.application"
# `manage.py test` runs the pytest suite (Django's runner would find no tests and report OK).
TEST_RUNNER = "finefoundry.test_runner.PytestRunner"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------

FINEFOUNDRY_DB = Path(os.environ.get("FINEFOUNDRY_DB") or BASE_DIR / "finefoundry.db").expanduser().resolve()
# The desktop app keeps its artefacts and resolves relative run paths beside its database.
FINEFOUNDRY_DATA_DIR = FINEFOUNDRY_DB.parent
FINEFOUNDRY_STORAGE_ROOT = (
    Path(os.environ.get("FINEFOUNDRY_STORAGE_ROOT") or FINEFOUNDRY_DATA_DIR / "training_outputs").expanduser().resolve()
)
# Background jobs' files: exports made by a job and uploads waiting to be imported (storage/jobs/).
FINEFOUNDRY_JOBS_DIR = (
    Path(os.environ.get("FINEFOUNDRY_JOBS_DIR") or FINEFOUNDRY_DATA_DIR / "jobs").expanduser().resolve()
)
# The largest file the admin's import page accepts (bytes); the command line has no such limit.
FINEFOUNDRY_MAX_UPLOAD_BYTES = env_int("FINEFOUNDRY_MAX_UPLOAD_MB", 2048, minimum=1) * 1024 * 1024

# Memory-mapped reads stay off by default: a map makes every process's resident memory grow with
# the file (an export of 1,000,000 pairs peaked 200 MB above one of 100,000), while reads go
# through SQLite's page cache (cache_size, 32 MB per connection) instead. bench/export.py measures it.
SQLITE_MMAP_BYTES = env_int("FINEFOUNDRY_SQLITE_MMAP_MB", 0) * 1024 * 1024

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend, plus a refusal to open a file that is not a usable SQLite database.
            "ENGINE": "storage.db.sqlite",
            "NAME": FINEFOUNDRY_DB,
            "OPTIONS": {
                # Take the write lock at BEGIN so concurrent writers queue on the busy
                # timeout instead of failing with "database is locked" on lock upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=30000;"
                    "PRAGMA foreign_keys=ON;"
                    f"PRAGMA mmap_size={SQLITE_MMAP_BYTES};"
                    "PRAGMA cache_size=-32768;"
                ),
            },
            # Tests use a real file (WAL, locking and all), never the user's database.
            "TEST": {
                "NAME": os.environ.get("FINEFOUNDRY_TEST_DB")
                or str(Path(tempfile.gettempdir()) / f"finefoundry-test-{os.getpid()}.sqlite3")
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# "auto": pair search uses the SQLite FTS5 index when there is one; "like": always plain icontains.
FINEFOUNDRY_SEARCH_BACKEND = os.environ.get("FINEFOUNDRY_SEARCH_BACKEND", "auto").strip().lower()

# The admin's length profile counts tokens exactly with this local tokenizer.json; unset, it estimates.
FINEFOUNDRY_TOKENIZER = os.environ.get("FINEFOUNDRY_TOKENIZER") or None

# --- Auth ---------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# A pair may hold 1,000,000 characters (up to 4 MB of UTF-8) and must stay editable in the admin;
# anything larger gets the form's own message rather than a bare "Bad Request".
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

# --- Security -----------------------------------------------------------------------------

# Plain HTTP on loopback by default (see README, "Security"). Behind a TLS-terminating proxy, set
# DJANGO_HTTPS=1: the proxy must set X-Forwarded-Proto and strip it from what clients send.
SERVED_OVER_HTTPS = env_flag("DJANGO_HTTPS")
if SERVED_OVER_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_flag("DJANGO_HSTS_PRELOAD")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Everything the admin loads comes from this server: its scripts and styles are files (no inline
# script or style anywhere), its charts are SVG written into the page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Error reports (the debug page with DJANGO_DEBUG=1, error mails) mask every secret, DEBUG or not.
DEFAULT_EXCEPTION_REPORTER = "storage.error_reports.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "storage.error_reports.SecretsReporterFilter"

# --- Internationalisation -----------------------------------------------------------------

LANGUAGE_CODE = "en-us"
# Dates as 2024-12-01 10:30:00 UTC everywhere in the admin (finefoundry/formats/en/formats.py).
FORMAT_MODULE_PATH = ["finefoundry.formats"]
# The desktop app stores UTC (SQLite's datetime('now')), so UTC is the one honest zone.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------

STATIC_URL = "static/"
# Only for `collectstatic` when deploying behind another server; WhiteNoise serves from the apps otherwise.
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
# Serve the admin's CSS and JS straight from the apps, so `runserver` looks right with DEBUG off.
WHITENOISE_USE_FINDERS = True

# --- Logging ------------------------------------------------------------------------------

FINEFOUNDRY_LOG_LEVEL = os.environ.get("FINEFOUNDRY_LOG_LEVEL", "INFO").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
        # Both feed one background writer; the database is added to the console, never instead of it.
        "database": {"class": "storage.dblog.handler.DatabaseLogHandler", "level": FINEFOUNDRY_LOG_LEVEL},
        "database_errors": {"class": "storage.dblog.handler.DatabaseLogHandler", "level": "ERROR"},
    },
    "loggers": {
        "finefoundry": {"handlers": ["console", "database"], "level": FINEFOUNDRY_LOG_LEVEL, "propagate": False},
        # Server errors; still propagates to Django's own "django" logger and its console/mail handlers.
        "django.request": {"handlers": ["database_errors"]},
    },
}
