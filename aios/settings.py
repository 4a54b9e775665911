"""The only settings module: every knob comes from the environment (see README, "Settings").

Defaults give the embedded setup (SQLite + a local file cache) so `make run` and `make test`
work on a fresh machine; `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and Redis.
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AIOS_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
TESTING = "pytest" in sys.modules or env.bool("AIOS_TESTING", default=False)
SERVING = env.bool("AIOS_SERVING", default=False)  # set by aios/wsgi.py: a web server process
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-dev-only")  # see check --deploy
# Production is said, not guessed: DJANGO_ENV=production turns on HTTPS-only cookies, HSTS and
# the SSL redirect, and refuses DEBUG and the development key. Anything else is development,
# where `make run` serves plain HTTP on 127.0.0.1 with the development key.
PRODUCTION = env("DJANGO_ENV", default="development") == "production"
if PRODUCTION:
    from aios.security import refuse_unsafe_production

    refuse_unsafe_production(debug=DEBUG, secret_key=SECRET_KEY)
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
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN)
    "django_prometheus",
    "aios",
    "aios.monitoring",
    "marketplace",
    "knowledge",
]

MIDDLEWARE = [
    # Prometheus "before" first and "after" last: the two bracket the whole stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Request id, latency by view, the monitoring window (aios/monitoring).
    "aios.monitoring.middleware.RequestMonitoringMiddleware",
    # With an edge cache: a write's answer waits for its purges, signed-in answers say
    # private (aios/edge.py).
    "aios.edge.EdgeMiddleware",
    "aios.response_cache.StoreCopyMiddleware",  # copies keep the headers added below
    "django.middleware.security.SecurityMiddleware",
    "aios.security.ContentSecurityPolicyMiddleware",
    # Oversized API bodies (413) and non-UTF-8 query strings (400) stop here (aios/guards.py).
    "aios.guards.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below whitenoise (static files never reach it), above everything that writes the body.
    "aios.compression.CompressionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aios.resilience.DatabaseOverloadMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # keep last
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
# django-prometheus's query metrics plus an open-connection gauge (aios/monitoring/db).
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.postgresql": "aios.monitoring.db.backends.postgresql",
    "django.db.backends.sqlite3": "aios.monitoring.db.backends.sqlite3",
}.get(DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"])
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
    # The pool checks a connection before lending it (one empty round trip), so a backend
    # killed while idle (database restart, pg_terminate_backend, a proxy's idle cut) is
    # replaced instead of failing the next request with a 500 (tests/faults).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # marketplace.search's typo tolerance: name word-similarity matches from 0.45 (pg_trgm's
    # default 0.6 misses a transposed letter). Set per connection, so no query pays a SET.
    DATABASES["default"]["OPTIONS"]["options"] = "-c pg_trgm.word_similarity_threshold=0.45"
    if SERVING:
        # A runaway query is cancelled (and answered 503 by aios.resilience) just before the
        # request's own time runs out, so the database stops working for a client that gave
        # up. Only when serving requests: migrate, seed_demo and recount may run for minutes.
        DATABASES["default"]["OPTIONS"]["options"] += (
            f" -c statement_timeout={max(REQUEST_TIMEOUT * 1000 - 500, 1000)}"
        )
else:
    # Several threads and gunicorn workers share one SQLite file: wait for a lock, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

# Streaming replicas (docs/scaling.md): each URL becomes an alias replica_0, replica_1, ... with
# the primary's engine options and a psycopg pool of its own; aios.replicas routes reads to a
# healthy one and everything else to the primary. Empty: one database, no router, no cost.
DATABASE_REPLICA_URLS = env.list("DATABASE_REPLICA_URLS", default=[])
# A replica whose replay is further behind the primary than this many seconds is skipped.
DATABASE_REPLICA_MAX_LAG = env.float("DATABASE_REPLICA_MAX_LAG", default=5.0)
# Each process checks every replica (and the primary's WAL position) this often, in a thread.
DATABASE_REPLICA_CHECK_INTERVAL = env.float("DATABASE_REPLICA_CHECK_INTERVAL", default=1.0)
# A replica's pool waits at most this long for a connection; then the read goes to the primary.
DATABASE_REPLICA_POOL_TIMEOUT = min(DATABASE_POOL_TIMEOUT, 1.0)
DATABASE_REPLICAS = []
if DATABASE_REPLICA_URLS:
    if not IS_POSTGRES:
        # Ignoring the setting would leave an operator believing reads are spread out.
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URLS needs PostgreSQL: set DATABASE_URL=postgres://... (the "
            "embedded SQLite database has no replicas)"
        )
    for _number, _url in enumerate(DATABASE_REPLICA_URLS):
        _replica = env.db_url_config(_url)
        if _replica["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URLS: replica {_number} is not postgres://"
            )
        _primary = DATABASES["default"]
        _replica.update(
            {
                "ENGINE": _primary["ENGINE"],
                "CONN_MAX_AGE": _primary["CONN_MAX_AGE"],
                "CONN_HEALTH_CHECKS": _primary["CONN_HEALTH_CHECKS"],
                "OPTIONS": {
                    **_primary["OPTIONS"],
                    "pool": {
                        **_primary["OPTIONS"]["pool"],
                        "timeout": DATABASE_REPLICA_POOL_TIMEOUT,
                    },
                    **_replica.get("OPTIONS", {}),
                },
                # Tests run against the primary's test database; a replica has none of its own.
                "TEST": {"MIRROR": "default"},
            }
        )
        DATABASES[f"replica_{_number}"] = _replica
        DATABASE_REPLICAS.append(f"replica_{_number}")
    DATABASE_ROUTERS = ["aios.replicas.PrimaryReplicaRouter"]
    # Outside the session middleware: a sign-in's new session is saved before the floor is
    # left. The retry sits inside the overload guard, which would answer its errors with 503.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("aios.response_cache.StoreCopyMiddleware") + 1,
        "aios.replicas.RoutingMiddleware",
    )
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django_prometheus.middleware.PrometheusAfterMiddleware"),
        "aios.replicas.RetryOnPrimaryMiddleware",
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
# false: no response caching, no cached values (marketplace/caching.py is pass-through; its
# invalidations still run). The backend below stays: DRF's throttles keep their counters in it.
CACHE_ENABLED = env.bool("CACHE_ENABLED", default=True)
CACHE_TTL = env.int("CACHE_TTL", default=300)
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", default="aios")
# Counters (install counts, ratings, the orders and stats built on them) shown by a cached
# copy may lag this many seconds behind writes; 0: every write retires what shows it.
COUNTER_STALENESS = env.float("COUNTER_STALENESS", default=30)
# Fresh copies are answered in front of Django (aios.response_cache.HitPath).
RESPONSE_CACHE_HIT_PATH = env.bool("RESPONSE_CACHE_HIT_PATH", default=True)
# Hits one client address may get per second from one process before its requests go
# through Django's throttles.
RESPONSE_CACHE_HIT_RATE = env.int("RESPONSE_CACHE_HIT_RATE", default=200)
# Per-process exact copy of hot cache keys (Redis client tracking); 0 turns it off.
RESPONSE_CACHE_NEAR_BYTES = env.int("RESPONSE_CACHE_NEAR_BYTES", default=8 * 1024 * 1024)
REDIS_URL = env("REDIS_URL", default="")
# Redis found through Sentinel (aios/redis_ha.py); takes the place of REDIS_URL when set.
REDIS_SENTINELS = env.list("REDIS_SENTINELS", default=[])  # host:port of each sentinel
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="")  # the monitored service
REDIS_SENTINEL_DB = env.int("REDIS_SENTINEL_DB", default=0)
REDIS_PASSWORD = env("REDIS_PASSWORD", default="")  # the servers'; with REDIS_URL: in the URL
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD", default="")  # the sentinels' own
# An edge cache in front (Varnish with xkey, deploy/varnish/; aios/edge.py): the addresses its
# purges go to, comma-separated. Empty: no edge; anonymous copies say `public, max-age` only
# and writes purge nothing. Purges are sent off the request path; a write's answer waits for
# the edge's confirmation EDGE_PURGE_TIMEOUT seconds at most (not at all while it fails).
EDGE_PURGE_URLS = [u.strip() for u in env.list("EDGE_PURGE_URLS", default=[]) if u.strip()]
EDGE_PURGE_TIMEOUT = env.float("EDGE_PURGE_TIMEOUT", default=0.5)

# django-redis behind a circuit breaker (aios/cache.py): Redis down or slow is a miss,
# never a 5xx, costs one short timeout per CACHE_BREAKER_SECONDS, and heals by itself.
# (A setting of its own so tests can point the cache elsewhere with the same options.)
REDIS_CACHE_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "PARSER_CLASS": "redis.connection._HiredisParser",
    "SOCKET_CONNECT_TIMEOUT": env.float("CACHE_SOCKET_TIMEOUT", default=0.25),
    "SOCKET_TIMEOUT": env.float("CACHE_SOCKET_TIMEOUT", default=0.25),
    "CIRCUIT_BREAKER_SECONDS": env.float("CACHE_BREAKER_SECONDS", default=5.0),
    "FAILURE_LOG_INTERVAL": 60,
}
if REDIS_SENTINELS:
    from aios.redis_ha import sentinel_cache

    _cache = sentinel_cache(
        sentinels=REDIS_SENTINELS,
        master=REDIS_SENTINEL_MASTER,
        db=REDIS_SENTINEL_DB,
        password=REDIS_PASSWORD,
        sentinel_password=REDIS_SENTINEL_PASSWORD,
        options=REDIS_CACHE_OPTIONS,
    )
elif REDIS_URL:
    _cache = {
        "BACKEND": "aios.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": REDIS_CACHE_OPTIONS,
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
if DATABASE_REPLICAS and not REDIS_URL:
    # Read-your-writes keeps each client's floor where every app process reads it.
    raise ImproperlyConfigured(
        "DATABASE_REPLICA_URLS needs REDIS_URL: the floors writes leave for their clients "
        "(read-your-writes) must be shared by every app process, which a file cache is not"
    )

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2 is memory-hard (OWASP's first choice), so GPU guessing of a leaked hash costs far
# more than against PBKDF2; PBKDF2 stays second to verify (and upgrade on login) older hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Hashing cost is irrelevant to what tests check and dominates factory-made users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Security (README, "Security") ----------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Probes and the Prometheus scraper talk plain HTTP inside the network; a redirect fails them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Proxies in front (load balancer, edge cache) whose X-Forwarded-For names the client: CIDRs,
# comma-separated (aios/proxies.py). Empty: the peer address is the client, as without proxies.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Secure cookies only over HTTPS, which `make run` on 127.0.0.1 does not have.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
# The site's JS reads the CSRF token from the form it submits, never from the cookie.
CSRF_COOKIE_HTTPONLY = True
# No inline script or style anywhere: a stored <script> that slipped past escaping still
# would not run. aios.security sends it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI styles its elements inline; scripts stay 'self' there too.
CONTENT_SECURITY_POLICY_BY_PATH = {
    "/api/docs/": CONTENT_SECURITY_POLICY + "; style-src 'self' 'unsafe-inline'"
}
# Password reset mail; the console backend prints it (EMAIL_URL=smtp+tls://user:pw@host:587).
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="AIOS Marketplace <noreply@localhost>")
# Sign-in brute force (aios.throttling): failed attempts allowed per window.
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", default=900)
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=10)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=30)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
# Tests write icons and uploads to a throwaway directory, never into var/media.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="aios-test-media-")) if TESTING else VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # whitenoise's CompressedManifestStaticFilesStorage, minifying the site's CSS and JS.
        "BACKEND": "aios.storage.MinifiedStaticFilesStorage"
        if not TESTING
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}


def _static_cache_headers(headers, path, url):
    from aios.storage import static_cache_headers  # not at import time: settings load first

    static_cache_headers(headers, path, url)


WHITENOISE_ADD_HEADERS_FUNCTION = _static_cache_headers

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# --- API (marketplace/api, knowledge/api; README, "API") ------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes an anonymous write a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "aios.authentication.CachedTokenAuthentication",  # DRF's, remembered per process
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    # DRF's JSON parser, but deeply nested JSON is a 400, not a RecursionError (a 500).
    "DEFAULT_PARSER_CLASSES": ["aios.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "aios.pagination.KeysetPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "aios.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        # DRF's AnonRateThrottle and UserRateThrottle (signed-in users only), each counted
        # in one cache round trip (aios.throttling).
        "aios.throttling.AnonRateThrottle",
        "aios.throttling.SignedInRateThrottle",
    ],
    # The client address is REMOTE_ADDR, which aios.proxies sets from X-Forwarded-For only
    # behind TRUSTED_PROXIES; DRF's own reading of the header would let a client pick its
    # throttle bucket by sending one.
    "NUM_PROXIES": 0,
    # Per client IP (anon) or user; `search` is the tighter scope of the search endpoint.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="600/min"),
        "user": env("API_THROTTLE_USER", default="1200/min"),
        "search": env("API_THROTTLE_SEARCH", default="120/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AIOS Marketplace API",
    "DESCRIPTION": "Agents, installations, reviews and the knowledge base. Lists are "
    "cursor-paginated: follow `next` / `previous` (or the `Link` header).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components (read-only fields out, real constraints in).
    "COMPONENT_SPLIT_REQUEST": True,
    # JSON is the only request body type: generated clients break on multi-content bodies.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default
        "aios.api.errors.document_uri_too_long",  # gunicorn's 414 on GET lists
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging --------------------------------------------------------------------------------
# One JSON object a line (LOG_FORMAT=plain for reading by eye), each carrying the request id
# and view of the request it was logged in (aios.monitoring.context).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "aios.monitoring.context.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(view)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", default="json"),
            "filters": ["request"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Admin changelists of the big tables show PostgreSQL's row estimate above this many rows
# instead of counting them on every page view (aios.pagination.EstimatedCountPaginator).
ADMIN_ESTIMATED_COUNT_ABOVE = env.int("ADMIN_ESTIMATED_COUNT_ABOVE", default=100_000)

# --- Monitoring (aios/monitoring; README, "Operations") ------------------------------------
SLOW_QUERY_MS = env.float("SLOW_QUERY_MS", default=50)
# /metrics answers these networks (direct connections only) or a bearer METRICS_TOKEN.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# /api/v1/monitoring/ answers staff (session or API token) or `Bearer <MONITORING_TOKEN>`.
MONITORING_TOKEN = env("MONITORING_TOKEN", default="")
MONITORING_WINDOW_SECONDS = env.int("MONITORING_WINDOW_SECONDS", default=300)
MONITORING_REPORT_INTERVAL = env.float("MONITORING_REPORT_INTERVAL", default=1.0)
# Where workers share the window without Redis; Redis keys start with the prefix.
MONITORING_DIR = env("MONITORING_DIR", default="") or (
    tempfile.mkdtemp(prefix="aios-test-monitoring-") if TESTING else str(VAR_DIR / "monitoring")
)
MONITORING_KEY_PREFIX = env("MONITORING_KEY_PREFIX", default=f"{CACHE_KEY_PREFIX}:monitoring")

# --- Local directories ----------------------------------------------------------------------
# A fresh clone has no var/: SQLite cannot create its file in a missing directory, and the file
# cache, media and collected static expect theirs. Only the directories this configuration uses.
_db = DATABASES["default"]
LOCAL_DIRS = [VAR_DIR, Path(MEDIA_ROOT), Path(STATIC_ROOT), Path(MONITORING_DIR)]
if _db["ENGINE"].endswith("sqlite3") and _db["NAME"] and _db["NAME"] != ":memory:":
    LOCAL_DIRS.append(Path(_db["NAME"]).parent)
if CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
    LOCAL_DIRS.append(Path(CACHES["default"]["LOCATION"]))
for _directory in LOCAL_DIRS:
    _directory.mkdir(parents=True, exist_ok=True)

# django-prometheus's histograms (queries, requests) resolve 5 ms .. 2 s, like the app's own.
PROMETHEUS_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
                              1.0, 1.5, 2.0, 5.0, float("inf"))  # fmt: skip

# django-debug-toolbar: development only, never imported otherwise (not even installed in
# the production image).
if DEBUG and not TESTING and importlib.util.find_spec("debug_toolbar"):
    INSTALLED_APPS.append("debug_toolbar")
    # Late, so it sits after any middleware that encodes the response; before Prometheus's.
    MIDDLEWARE.insert(len(MIDDLEWARE) - 1, "debug_toolbar.middleware.DebugToolbarMiddleware")
    INTERNAL_IPS = ["127.0.0.1", "::1"]
