"""The only settings module: every knob comes from the environment (see README, "Settings").

Defaults give the embedded setup (SQLite + a local file cache) so `make run` and `make test`
work on a fresh machine; `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and Redis.
"""

import os
import sys
import tempfile
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AIOS_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
TESTING = "pytest" in sys.modules or env.bool("AIOS_TESTING", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-dev-only")  # see check --deploy
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "marketplace",
    "knowledge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aios.urls"
WSGI_APPLICATION = "aios.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=20)
DATABASE_MAX_OVERFLOW = env.int("DATABASE_MAX_OVERFLOW", default=40)
DATABASE_POOL_TIMEOUT = env.float("DATABASE_POOL_TIMEOUT", default=5.0)
REQUEST_TIMEOUT = env.int("REQUEST_TIMEOUT", default=30)
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

if IS_POSTGRES:
    # psycopg 3's pool (Django >= 5.1): min = pool size, max = pool size + overflow, and a
    # bounded wait for a free connection. The pool replaces persistent connections.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": DATABASE_POOL_SIZE,
        "max_size": DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW,
        "timeout": DATABASE_POOL_TIMEOUT,
    }
    # marketplace.search's typo tolerance: name word-similarity matches from 0.45 (pg_trgm's
    # default 0.6 misses a transposed letter). Set per connection, so no query pays a SET.
    DATABASES["default"]["OPTIONS"]["options"] = "-c pg_trgm.word_similarity_threshold=0.45"
else:
    # Several threads and gunicorn workers share one SQLite file: wait for a lock, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
CACHE_ENABLED = env.bool("CACHE_ENABLED", default=True)
CACHE_TTL = env.int("CACHE_TTL", default=300)
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", default="aios")
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    _cache = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "PARSER_CLASS": "redis.connection._HiredisParser",
            "SOCKET_CONNECT_TIMEOUT": 0.25,
            "SOCKET_TIMEOUT": 0.25,
        },
    }
else:
    # A file cache, not locmem: gunicorn workers share no memory, and a per-process cache
    # would serve one worker's stale copy after another worker's write.
    _cache = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        # Each test process gets its own directory, so parallel runs never clear each other.
        "LOCATION": tempfile.mkdtemp(prefix="aios-test-cache-")
        if TESTING
        else str(VAR_DIR / "cache"),
    }
CACHES = {"default": {**_cache, "KEY_PREFIX": CACHE_KEY_PREFIX, "TIMEOUT": CACHE_TTL}}

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing cost is irrelevant to what tests check and dominates factory-made users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not TESTING
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
