"""Base settings: every value comes from the environment, with a safe development default.

No ``DATABASE_URL`` means SQLite; no ``REDIS_URL`` means the in-memory channel layer, a
local-memory cache and eager Celery tasks. ``production.py`` removes the insecure defaults.
"""

from datetime import timedelta
from pathlib import Path

import environ

from vrplatform.oidc_key import load_or_create_dev_key

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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="vrp"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels_redis blocks up to 5 s per receive (BZPOPMIN); redis-py 8's default
                # 5 s socket timeout would kill idle consumers, so allow longer reads.
                # redis-py 8's asyncio pool raises past 100 connections per event loop
                # instead of waiting; a burst of socket joins (group_add) needs more.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 1000}],
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
    "qos-compact": {"task": "monitoring.qos_history_compact", "schedule": 600},
    "streaming-reap-workers": {"task": "streaming.reap_workers", "schedule": 5},
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

# Login lockout per (username, client IP): after this many failures inside the window,
# further attempts get 429 with Retry-After until the window passes.
LOGIN_LOCKOUT_THRESHOLD = env.int("LOGIN_LOCKOUT_THRESHOLD", default=5)
LOGIN_LOCKOUT_WINDOW_SECONDS = env.int("LOGIN_LOCKOUT_WINDOW_SECONDS", default=900)

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
# Streaming control plane: a worker silent this long is dead and its streams move; per-second
# stats rows kept per stream (an hour, which monitoring then compacts to per-minute rows).
MORPHEUS_WORKER_DEAD_AFTER_S = env.float("MORPHEUS_WORKER_DEAD_AFTER_S", default=15.0)
MORPHEUS_STATS_HISTORY = env.int("MORPHEUS_STATS_HISTORY", default=3600)
MORPHEUS_QUEUE_TTL_S = env.int("MORPHEUS_QUEUE_TTL_S", default=120)
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="http://localhost:9090")
# /metrics: a scraper presents METRICS_TOKEN as a Bearer token or connects from these networks.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
GRAFANA_URL = env.str("GRAFANA_URL", default="http://localhost:3000")

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
