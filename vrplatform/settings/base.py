"""Base settings: every value comes from the environment, with a safe development default.

No ``DATABASE_URL`` means SQLite; no ``REDIS_URL`` means the in-memory channel layer, a
local-memory cache and eager Celery tasks. ``production.py`` removes the insecure defaults.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from vrplatform.oidc_key import load_or_create_dev_key
from workers.protocol.sockets import SESSION_IDLE_TIMEOUT_S

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# Development defaults: obviously insecure values that production.py refuses.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me-0123456789"  # noqa: S105

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "corsheaders",
    "oauth2_provider",
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.scenes",
    "apps.sessions",
    "apps.streaming",
    "apps.monitoring",
    "apps.web",
]

MIDDLEWARE = [
    "apps.monitoring.middleware.MetricsMiddleware",  # first: times everything below it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "vrplatform.urls"
ASGI_APPLICATION = "vrplatform.asgi.application"
WSGI_APPLICATION = None

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

# --- Data layer -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Development default: daphne, the worker socket and eager tasks write concurrently; take
    # the write lock up front and wait for it instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PgBouncer in transaction mode in front of PostgreSQL (DB_TRANSACTION_POOLER=true; see
# deploy/README.md "Cluster sizing"): a server connection belongs to another client after each
# transaction, so no server-side cursors (a named cursor outlives its transaction). Prepared
# statements are already off (Django's psycopg default: client-side binding,
# prepare_threshold None); persistent client connections (CONN_MAX_AGE) stay, they are to
# PgBouncer and cost it nothing.
DB_TRANSACTION_POOLER = env.bool("DB_TRANSACTION_POOLER", default=False)
# A streaming read replica (DATABASE_REPLICA_URL): reads of the apps in DATABASE_REPLICA_APPS
# (monitoring's capacity history and dashboard: seconds-stale is fine there) go to it, through
# vrplatform.db_routers; writes and every other read stay on the primary.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
DATABASE_REPLICA_APPS = env.list("DATABASE_REPLICA_APPS", default=["monitoring"])
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **env.db_url_config(DATABASE_REPLICA_URL),
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},  # tests read the primary under the replica's name
    }
    DATABASE_ROUTERS = ["vrplatform.db_routers.ReplicaRouter"]
if DB_TRANSACTION_POOLER:
    for _db in DATABASES.values():
        _db["DISABLE_SERVER_SIDE_CURSORS"] = True
# A connection pool in each process (Django's psycopg_pool support). Under ASGI each HTTP
# request runs on a thread of its own, so without a pool each one opened a PostgreSQL
# connection and closed it at the end (vrplatform/asgi.py): a backend started and torn down per
# request (benchmarks/RESULTS.md, "Issue 23: placement"). Pooled, a request borrows a
# connection and gives it back, and a process holds at most DB_POOL_MAX_SIZE of them (a
# request that finds none free waits DB_POOL_TIMEOUT_S, then gets 503 database_unavailable
# rather than PostgreSQL's "too many clients"). Persistent connections (CONN_MAX_AGE) do not
# mix with a pool: it is 0 where the pool is on. DB_POOL=false turns it off.
DB_POOL = env.bool("DB_POOL", default=True)
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=2)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=16)
DB_POOL_TIMEOUT_S = env.float("DB_POOL_TIMEOUT_S", default=10.0)
for _db in DATABASES.values():
    if DB_POOL and _db["ENGINE"].endswith("postgresql"):
        _db["CONN_MAX_AGE"] = 0
        # With CONN_HEALTH_CHECKS (on, above) the pool checks a connection at each borrow: one
        # that died meanwhile (PostgreSQL restarted, PgBouncer recycled it) is replaced first.
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": DB_POOL_MIN_SIZE,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT_S,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Redis under Sentinel (REDIS_SENTINELS="host:26379,host:26379", REDIS_SENTINEL_MASTER): the
# cache, the channel layer and Celery follow the master Sentinel names after a failover.
# REDIS_URL stays required (its database number and password are used; presence and the pose
# store of apps.sessions still connect to its host: point it at the master's Service).
REDIS_SENTINELS = env.str("REDIS_SENTINELS", default="")
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="mymaster")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="vrp"),
            # PING a pooled connection idle this long before using it: after a Redis restart
            # the pool's old sockets are dead, and the first request on one failed.
            # One pool per process, not per request (vrplatform/redis_pools.py).
            "OPTIONS": {
                "health_check_interval": 5,
                "pool_class": "vrplatform.redis_pools.SharedPool",
            },
        }
    }
    _layer_host: dict[str, Any] = {"address": REDIS_URL}
    if REDIS_SENTINELS:
        from vrplatform.redis_sentinel import parse_sentinels

        _sentinels = parse_sentinels(REDIS_SENTINELS)
        _sentinel = {"sentinels": _sentinels, "master_name": REDIS_SENTINEL_MASTER}
        CACHES["default"]["OPTIONS"].update(
            {"pool_class": "vrplatform.redis_sentinel.SentinelPool", **_sentinel}
        )
        _layer_host = dict(_sentinel)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels_redis blocks up to 5 s per receive (BZPOPMIN); redis-py 8's default
                # 5 s socket timeout would kill idle consumers, so allow longer reads.
                # redis-py 8's asyncio pool raises past 100 connections per event loop
                # instead of waiting; a burst of socket joins (group_add) needs more.
                # A pooled connection idle 5 s is PINGed before use, so sockets left dead by a
                # Redis restart are replaced instead of failing a consumer (1011).
                "hosts": [
                    {
                        **_layer_host,
                        "socket_timeout": 30,
                        "max_connections": 1000,
                        "health_check_interval": 5,
                    }
                ],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="vrp:asgi"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery (namespace CELERY) ---------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
if REDIS_URL and REDIS_SENTINELS:
    # kombu's Sentinel transport: one sentinel:// URL per sentinel, the master by name; the
    # database number and password of REDIS_URL.
    from redis.connection import parse_url

    _parts = parse_url(REDIS_URL)
    _auth = f":{_parts['password']}@" if _parts.get("password") else ""
    _db = _parts.get("db", 0)
    CELERY_BROKER_URL = ";".join(f"sentinel://{_auth}{h}:{p}/{_db}" for h, p in _sentinels)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"master_name": REDIS_SENTINEL_MASTER}
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE = {
    "capacity-sample": {"task": "monitoring.capacity_sample", "schedule": 300},
    "stats-compact": {"task": "streaming.stats_compact", "schedule": 600},
    "streaming-reap-workers": {"task": "streaming.reap_workers", "schedule": 5},
    "sessions-reap-presence": {"task": "sessions.reap_presence", "schedule": 30},
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

JWT_SECRET = env.str("JWT_SECRET", default=DEV_JWT_SECRET)
JWT_ALGORITHM = "HS256"
JWT_ISSUER = env.str("JWT_ISSUER", default="vrplatform")
JWT_ACCESS_TTL = timedelta(seconds=env.int("JWT_ACCESS_TTL_SECONDS", default=900))
JWT_REFRESH_TTL = timedelta(days=env.int("JWT_REFRESH_TTL_DAYS", default=14))

# Login lockout per (account, client IP): after this many failures inside the window,
# further attempts get 429 with Retry-After until the window passes.
LOGIN_LOCKOUT_THRESHOLD = env.int("LOGIN_LOCKOUT_THRESHOLD", default=5)
LOGIN_LOCKOUT_WINDOW_SECONDS = env.int("LOGIN_LOCKOUT_WINDOW_SECONDS", default=900)
# Failures from one client address over every account (password spraying), same window.
LOGIN_LOCKOUT_CLIENT_THRESHOLD = env.int("LOGIN_LOCKOUT_CLIENT_THRESHOLD", default=50)

# Where people reach the platform (the gateway in production); used in links we hand out.
PUBLIC_URL = env.str("PUBLIC_URL", default="http://localhost:8000").rstrip("/")

# --- OAuth2 / OpenID Connect (django-oauth-toolkit under /o/) ---------------------------------
OIDC_RSA_PRIVATE_KEY = env.str("OIDC_RSA_PRIVATE_KEY", multiline=True, default="") or (
    load_or_create_dev_key(VAR_DIR / "oidc_rsa_private.pem")
)
OAUTH2_SCOPES = {
    "openid": "OpenID Connect sign-in",
    "profile": "Your username, name and roles",
    "email": "Your email address",
    "sessions": "Create, join and use VR sessions",
    "streaming": "Start and control streams",
    "scenes": "Upload and manage scenes",
    "operations": "Operator tools: all sessions, workers and metrics",
    "admin": "Administer users and roles",
}
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(JWT_ACCESS_TTL.total_seconds()),
    "REFRESH_TOKEN_EXPIRE_SECONDS": int(JWT_REFRESH_TTL.total_seconds()),
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": OIDC_RSA_PRIVATE_KEY,
    "SCOPES": OAUTH2_SCOPES,
    "DEFAULT_SCOPES": ["openid", "profile", "sessions", "streaming"],
    "OAUTH2_VALIDATOR_CLASS": "apps.accounts.oauth.PlatformOAuth2Validator",
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    # Headsets that cannot type show this URL and a short code; the user approves elsewhere.
    "OAUTH_DEVICE_VERIFICATION_URI": f"{PUBLIC_URL}/o/device/",
    # RFC 9700 (OAuth 2.0 Security BCP): no implicit or password grants, S256 PKCE only,
    # tokens only in headers, `iss` in authorization responses, tokens stored hashed.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.PlatformBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="60/min"),
        "user": env.str("THROTTLE_USER", default="1200/min"),
        "authenticate": env.str("THROTTLE_AUTHENTICATE", default="30/min"),
        # /o/device/ and the device-confirm pages: user codes entered, per user and per address
        "device_user_code": env.str("THROTTLE_DEVICE_USER_CODE", default="20/min"),
    },
    "EXCEPTION_HANDLER": "apps.core.handlers.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.PlatformAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VR Platform API",
    "DESCRIPTION": (
        "Stream server-rendered stereo 6DoF views of glTF scenes to VR headsets. "
        "Authenticate with a platform JWT (`POST /api/athena/authenticate`) or an OAuth2 "
        "access token from `/o/token/`, sent as `Authorization: Bearer <token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    # Two apps have a `visibility` choice set; name each enum after its owner.
    "ENUM_NAME_OVERRIDES": {
        "SceneVisibilityEnum": "apps.scenes.models.Visibility",
        "SessionVisibilityEnum": "apps.sessions.models.SessionVisibility",
    },
}

CORS_ALLOWED_ORIGINS = env.list(
    "CORS_ORIGINS", default=["http://localhost:8000", "http://127.0.0.1:8000"]
)
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS

# --- Platform -------------------------------------------------------------------------------
MAX_CONCURRENT_SESSIONS = env.int("MAX_CONCURRENT_SESSIONS", default=100)
DEFAULT_QUALITY = env.str("DEFAULT_QUALITY", default="auto")
TARGET_FRAME_RATE = env.int("TARGET_FRAME_RATE", default=90)
MORPHEUS_GPU_ACCELERATION = env.bool("MORPHEUS_GPU_ACCELERATION", default=True)
NVENC_ENABLED = env.bool("NVENC_ENABLED", default=True)
# Streaming control plane: a worker silent this long is dead and its streams move; a queued
# stream waits this long for capacity.
MORPHEUS_WORKER_DEAD_AFTER_S = env.float("MORPHEUS_WORKER_DEAD_AFTER_S", default=15.0)
MORPHEUS_QUEUE_TTL_S = env.int("MORPHEUS_QUEUE_TTL_S", default=120)
# ICE (apps/streaming/ice.py): STUN and TURN servers for the browser and the workers. TURN
# credentials are minted per user from TURN_SHARED_SECRET (coturn's use-auth-secret) and live
# TURN_CREDENTIAL_TTL_S; the secret itself never leaves the platform. ICE_TRANSPORT_POLICY
# "relay" makes both ends use only the TURN relay (networks that allow nothing else).
STUN_URLS = env.list("STUN_URLS", default=[])
TURN_URLS = env.list("TURN_URLS", default=[])
TURN_SHARED_SECRET = env.str("TURN_SHARED_SECRET", default="")
TURN_CREDENTIAL_TTL_S = env.int("TURN_CREDENTIAL_TTL_S", default=3600)
ICE_TRANSPORT_POLICY = env.str("ICE_TRANSPORT_POLICY", default="all")
if ICE_TRANSPORT_POLICY not in ("all", "relay"):
    raise ImproperlyConfigured(
        f"ICE_TRANSPORT_POLICY must be 'all' or 'relay', not {ICE_TRANSPORT_POLICY!r}"
    )
if TURN_URLS and not TURN_SHARED_SECRET:
    raise ImproperlyConfigured("TURN_URLS needs TURN_SHARED_SECRET (coturn's static-auth-secret)")
# RUN_TURN=1 (manage.py run_platform): a local coturn whose URL the web server gets.
RUN_TURN = env.bool("RUN_TURN", default=False)
if ICE_TRANSPORT_POLICY == "relay" and not TURN_URLS and not RUN_TURN:
    raise ImproperlyConfigured("ICE_TRANSPORT_POLICY=relay needs TURN_URLS")
for _url in STUN_URLS + TURN_URLS:
    if not _url.startswith(("stun:", "stuns:", "turn:", "turns:")):
        raise ImproperlyConfigured(f"{_url!r} in STUN_URLS/TURN_URLS is not a stun:/turn: URL")
if TURN_CREDENTIAL_TTL_S < 60:
    raise ImproperlyConfigured("TURN_CREDENTIAL_TTL_S must be at least 60")
# Stream stats retention (apps/streaming/stats.py, the one policy): per-second reports for the
# recent window, then per-minute rows for the stream's life (and these days after it ends);
# a streaming stream folds its old seconds every N reports.
MORPHEUS_STATS_RECENT_S = env.int("MORPHEUS_STATS_RECENT_S", default=3600)
MORPHEUS_STATS_MINUTES_RETENTION_DAYS = env.int("MORPHEUS_STATS_MINUTES_RETENTION_DAYS", default=30)
MORPHEUS_STATS_COMPACT_EVERY = env.int("MORPHEUS_STATS_COMPACT_EVERY", default=60)
# Batched stats (apps/streaming/stats_batch.py): a worker connection's reports reach PostgreSQL
# in bulk every MORPHEUS_STATS_FLUSH_S seconds (or batches); the live second of each stream is
# in the cache for MORPHEUS_STATS_LIVE_TTL_S.
MORPHEUS_STATS_FLUSH_S = env.float("MORPHEUS_STATS_FLUSH_S", default=10.0)
MORPHEUS_STATS_LIVE_TTL_S = env.int("MORPHEUS_STATS_LIVE_TTL_S", default=30)
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="http://localhost:9090")
# /metrics: a scraper presents METRICS_TOKEN as a Bearer token or connects from these networks.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
GRAFANA_URL = env.str("GRAFANA_URL", default="http://localhost:3000")

# Monitoring (DelphiOracle): capacity samples and forecast, the operator dashboard, and the
# viewer notices of the worker's quality forecast.
MONITORING_CAPACITY_RETENTION_DAYS = env.int("MONITORING_CAPACITY_RETENTION_DAYS", default=35)
MONITORING_CAPACITY_BUCKET_S = env.int("MONITORING_CAPACITY_BUCKET_S", default=300)
MONITORING_CAPACITY_CACHE_S = env.int("MONITORING_CAPACITY_CACHE_S", default=60)
MONITORING_CAPACITY_SEASON_BUCKETS = env.int("MONITORING_CAPACITY_SEASON_BUCKETS", default=288)
MONITORING_STREAMS_PER_WORKER = env.int("MONITORING_STREAMS_PER_WORKER", default=4)
MONITORING_CAPACITY_HEADROOM = env.float("MONITORING_CAPACITY_HEADROOM", default=0.2)
MONITORING_MIN_WORKERS = env.int("MONITORING_MIN_WORKERS", default=1)
MONITORING_FORECAST_HORIZON_S = env.float("MONITORING_FORECAST_HORIZON_S", default=3.0)
MONITORING_ORACLE_COOLDOWN_S = env.float("MONITORING_ORACLE_COOLDOWN_S", default=5.0)
MONITORING_ORACLE_HOLD_S = env.float("MONITORING_ORACLE_HOLD_S", default=10.0)
MONITORING_DASHBOARD_INTERVAL_S = env.float("MONITORING_DASHBOARD_INTERVAL_S", default=1.0)

# Sessions (HermesAPI) sockets: authentication and idle timeouts, per-connection message rates
# (general and pose), strikes before a flood closes the socket; the snapshot tick (also the
# tick at which each streaming worker gets the poses of the session's other participants).
HERMES_AUTH_TIMEOUT_S = env.float("HERMES_AUTH_TIMEOUT_S", default=5.0)
# The heartbeat interval and idle timeout are chosen in workers/protocol/sockets.py (one place).
HERMES_IDLE_TIMEOUT_S = env.float("HERMES_IDLE_TIMEOUT_S", default=SESSION_IDLE_TIMEOUT_S)
HERMES_WS_RATE = env.float("HERMES_WS_RATE", default=20.0)
HERMES_WS_BURST = env.float("HERMES_WS_BURST", default=40.0)
HERMES_WS_POSE_RATE = env.float("HERMES_WS_POSE_RATE", default=120.0)
HERMES_WS_POSE_BURST = env.float("HERMES_WS_POSE_BURST", default=240.0)
HERMES_WS_FLOOD_STRIKES = env.int("HERMES_WS_FLOOD_STRIKES", default=100)
# Admission: a socket that connects while this many database calls of the process's session
# sockets are waiting or running (sign-ins, joins, leaves) is closed at once with 4503
# "overloaded" and retries after its backoff, instead of queueing until daphne's handshake
# timeout (5 s) fails it after the work was spent (benchmarks/RESULTS.md, "Issue 23").
HERMES_CONNECT_BACKLOG_LIMIT = env.int("HERMES_CONNECT_BACKLOG_LIMIT", default=64)
SESSION_TICK_HZ = env.int("SESSION_TICK_HZ", default=30)
HERMES_GC_FREEZE = env.bool("HERMES_GC_FREEZE", default=True)

# Scenes: upload limit and the sandboxed processing child (validation + thumbnail).
SCENE_MAX_UPLOAD_MB = env.int("SCENE_MAX_UPLOAD_MB", default=200)
SCENE_PROCESS_TIMEOUT_S = env.int("SCENE_PROCESS_TIMEOUT_S", default=240)
SCENE_PROCESS_MEMORY_MB = env.int("SCENE_PROCESS_MEMORY_MB", default=3072)
SCENE_PROCESS_MAX_ATTEMPTS = env.int("SCENE_PROCESS_MAX_ATTEMPTS", default=3)
# Each external tool of processing (Khronos validator, decoders, FBX/OBJ converter) gets this
# much wall time; no file processing writes (a converted or decoded scene) may exceed the size.
SCENE_TOOL_TIMEOUT_S = env.int("SCENE_TOOL_TIMEOUT_S", default=120)
SCENE_PROCESS_MAX_OUTPUT_MB = env.int("SCENE_PROCESS_MAX_OUTPUT_MB", default=1024)
SCENE_CACHE_DIR = env.path("SCENE_CACHE_DIR", default=str(VAR_DIR / "scene-cache"))
SCENE_THUMBNAIL_SIZE = tuple(env.list("SCENE_THUMBNAIL_SIZE", cast=int, default=[512, 288]))
SCENE_WORK_DIR = env.str("SCENE_WORK_DIR", default="") or None  # None: the system temp dir
# Validator limit overrides: a JSON object of apps.scenes.validation GltfLimits fields.
SCENE_GLTF_LIMITS = env.json("SCENE_GLTF_LIMITS", default={})
# The processing child runs in a bubblewrap sandbox (apps/scenes/sandbox.py). Without one:
# required (refuse to process), best_effort (log an error, run with limits only), off.
SCENE_SANDBOX = env.str("SCENE_SANDBOX", default="required")
if SCENE_SANDBOX not in ("required", "best_effort", "off"):
    raise ValueError(f"SCENE_SANDBOX must be required, best_effort or off, not {SCENE_SANDBOX!r}")
SCENE_SANDBOX_BWRAP = env.str("SCENE_SANDBOX_BWRAP", default="bwrap")
# auto: the sandbox gets a fresh /proc, or none where the kernel refuses one (Docker); none.
SCENE_SANDBOX_PROC = env.str("SCENE_SANDBOX_PROC", default="auto")
# Directories of processing tools installed outside /usr (first on the child's PATH).
SCENE_TOOL_PATH = env.list("SCENE_TOOL_PATH", default=[])

# --- Static, media, i18n --------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / "media"))
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# --- Accounts, sign-in and request security (issue 14) --------------------------------------
# Client addresses: X-Forwarded-For is believed only when the direct peer is one of these
# networks (the gateway), everywhere an address is used (throttles, login lockout, /metrics).
# Empty (the default, as with `make run`): the header is ignored. Behind daphne's
# --proxy-headers (the Docker image) daphne already puts the gateway's header in REMOTE_ADDR.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
MIDDLEWARE.insert(1, "apps.core.middleware.TrustedProxyMiddleware")  # after metrics only
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
)
# Requests a process runs at once past the metrics (the rest wait on the event loop holding no
# database connection): half the pool leaves the sockets' executor threads theirs.
HTTP_MAX_CONCURRENCY = env.int("HTTP_MAX_CONCURRENCY", default=max(DB_POOL_MAX_SIZE // 2, 1))
MIDDLEWARE.insert(1, "apps.core.middleware.RequestSlotsMiddleware")  # after metrics only
REST_FRAMEWORK["NUM_PROXIES"] = 0  # REMOTE_ADDR is the client already (see above)
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "apps.core.parsers.JSONParser",  # deep nesting is a 400 bad_json, not a 500
    "rest_framework.parsers.MultiPartParser",
    "rest_framework.parsers.FormParser",
]
# Bodies over this are refused by daphne from the headers, before any of it is read: the
# largest scene upload plus room for the multipart envelope.
MAX_REQUEST_BODY_BYTES = env.int(
    "MAX_REQUEST_BODY_BYTES", default=(SCENE_MAX_UPLOAD_MB + 1) * 1024 * 1024
)
# Content-Security-Policy of every response. The pages load scripts and styles from this
# origin only; blob: images are thumbnails fetched with a token; WebSockets are same-origin.
CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "worker-src": ["'self'", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# The API docs page loads Swagger UI from its CDN (drf-spectacular's default); its script
# is served from our origin (the split view), its one <style> block is inline.
CSP_PATH_EXTRAS: dict[str, dict[str, list[str]]] = {
    "/api/docs/": {
        "script-src": ["https://cdn.jsdelivr.net"],
        "style-src": ["https://cdn.jsdelivr.net", "'unsafe-inline'"],  # its one <style>
        "img-src": ["https://cdn.jsdelivr.net"],
    },
}
CSP_REPORT_ONLY = env.bool("CSP_REPORT_ONLY", default=False)

# Sign-in pages for everyone (django-allauth): /accounts/login/ serves the OAuth2 provider's
# /o/authorize/ and /o/device/, the web client's external sign-in, sign-out, password change
# and reset, optional self sign-up, and external identity providers (OpenID Connect, GitHub,
# Google). The admin keeps its own login for staff.
INSTALLED_APPS += [
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
]
MIDDLEWARE.append("allauth.account.middleware.AccountMiddleware")
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
TEMPLATES[0]["OPTIONS"]["context_processors"].append(
    "apps.accounts.context_processors.account_settings"
)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/login/"  # the web client trades the session for its tokens there
ACCOUNT_LOGOUT_REDIRECT_URL = "/login/"
ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "apps.accounts.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SIGNUP_OPEN = env.bool("ACCOUNT_SIGNUP_OPEN", default=False)  # self sign-up
# Open self sign-up verifies e-mail ("mandatory"): the address is proven before the account is
# usable, and the sign-up page answers the same for a taken address as for a new one (the
# owner gets an e-mail instead), so it cannot tell who has an account. Sign-up stays closed
# unless verification is mandatory (apps/accounts/adapters.py, and a system check).
ACCOUNT_EMAIL_VERIFICATION = env.str(
    "ACCOUNT_EMAIL_VERIFICATION", default="mandatory" if ACCOUNT_SIGNUP_OPEN else "optional"
)
ACCOUNT_PREVENT_ENUMERATION = True
SOCIAL_SIGNUP_OPEN = env.bool("SOCIAL_SIGNUP_OPEN", default=True)  # first sign-in via a provider
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # a POST (CSRF-checked) starts an external sign-in
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # linking by e-mail: the adapter's stricter rule
# External providers from the environment (or, per provider, a "Social application" in the
# admin). OIDC_PROVIDERS: comma-separated ids; for each, OIDC_<ID>_{NAME,SERVER_URL,CLIENT_ID,
# CLIENT_SECRET}. GitHub/Google: {GITHUB,GOOGLE}_CLIENT_{ID,SECRET}.
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
_oidc_apps = []
for _pid in env.list("OIDC_PROVIDERS", default=[]):
    _key = _pid.upper().replace("-", "_")
    _oidc_apps.append(
        {
            "provider_id": _pid,
            "name": env.str(f"OIDC_{_key}_NAME", default=_pid),
            "client_id": env.str(f"OIDC_{_key}_CLIENT_ID"),
            "secret": env.str(f"OIDC_{_key}_CLIENT_SECRET", default=""),
            "settings": {
                "server_url": env.str(f"OIDC_{_key}_SERVER_URL"),
                "oauth_pkce_enabled": True,
                "token_auth_method": "client_secret_post",
            },
        }
    )
if _oidc_apps:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {"APPS": _oidc_apps}
for _name in ("github", "google"):
    if env.str(f"{_name.upper()}_CLIENT_ID", default=""):
        SOCIALACCOUNT_PROVIDERS[_name] = {
            "APP": {
                "client_id": env.str(f"{_name.upper()}_CLIENT_ID"),
                "secret": env.str(f"{_name.upper()}_CLIENT_SECRET", default=""),
            },
            "SCOPE": ["read:user", "user:email"] if _name == "github" else ["openid", "email"],
            "VERIFIED_EMAIL": False,  # trust only what the provider marks verified
        }
# Mail: the console in development (reset links appear in the server log); EMAIL_URL
# (smtp://user:pass@host:587, ...) in production.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="VR Platform <noreply@localhost>")
