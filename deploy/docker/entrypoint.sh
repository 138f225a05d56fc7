#!/bin/sh
# Container entrypoint: `entrypoint.sh ROLE [args]`.
#
#   web               daphne on $PORT (behind the gateway; trusts its X-Forwarded-* headers)
#   celery            Celery worker (scene processing)
#   streaming         streaming worker; token from $WORKER_TOKEN or the file $WORKER_TOKEN_FILE
#   setup             one-shot: migrate, demo accounts, demo scene
#   keygen            one-shot: create missing secrets and a self-signed TLS certificate in
#                     $SECRETS_DIR (docker compose on one machine; Kubernetes uses Secrets)
#   provision-worker  one-shot: register a streaming worker, write its token to $WORKER_TOKEN_FILE
#   turn              coturn (TURN relay) checking the platform's TURN credentials: the same
#                     $TURN_SHARED_SECRET (or _FILE) as the web processes; TURN_* options below
#   manage ARGS       manage.py ARGS
#   anything else     run as given
#
# Secrets may come as files: for NAME in the list below, NAME_FILE=path sets NAME from the
# file's contents (Docker/Kubernetes secret volumes). Without DATABASE_URL, it is built from
# POSTGRES_* so that the database password lives in one place.
set -eu

read_secret_files() {
    for name in DJANGO_SECRET_KEY JWT_SECRET OIDC_RSA_PRIVATE_KEY POSTGRES_PASSWORD DATABASE_URL REDIS_URL METRICS_TOKEN TURN_SHARED_SECRET; do
        eval "file=\${${name}_FILE:-}"
        eval "value=\${${name}:-}"
        if [ -n "$file" ] && [ -z "$value" ]; then
            if [ ! -r "$file" ]; then
                echo "entrypoint: ${name}_FILE=$file is not readable" >&2
                exit 1
            fi
            eval "export ${name}=\"\$(cat \"\$file\")\""
        fi
    done
    if [ -z "${DATABASE_URL:-}" ] && [ -n "${POSTGRES_PASSWORD:-}" ]; then
        export DATABASE_URL="postgres://${POSTGRES_USER:-vrp}:${POSTGRES_PASSWORD}@${POSTGRES_HOST:-postgres}:${POSTGRES_PORT:-5432}/${POSTGRES_DB:-vrp}"
    fi
    # docker-compose.yml's `turn` relay: TURN_URLS unset (not empty, which turns TURN off)
    # means that relay on $TURN_HOST. Made here, not by a nested ${...} default in the compose
    # file, which Debian's docker-compose 1.29 mis-expands.
    if [ -z "${TURN_URLS+set}" ] && [ -n "${TURN_HOST:-}" ]; then
        export TURN_URLS="turn:${TURN_HOST}:3478?transport=udp,turn:${TURN_HOST}:3478?transport=tcp"
    fi
}

wait_for_file() {  # $1 path, $2 seconds
    waited=0
    while [ ! -s "$1" ]; do
        if [ "$waited" -ge "$2" ]; then
            echo "entrypoint: $1 did not appear within $2 s" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

role="${1:-web}"
[ "$#" -gt 0 ] && shift
# The healthcheck (a separate process) reads the role from here.
echo "$role" > /tmp/vrp-role 2>/dev/null || true

case "$role" in
    web)
        read_secret_files
        exec daphne --bind 0.0.0.0 --port "${PORT:-8000}" --proxy-headers \
            --access-log - vrplatform.asgi:application "$@"
        ;;
    celery)
        read_secret_files
        exec celery -A vrplatform worker --loglevel "${LOG_LEVEL:-INFO}" \
            --concurrency "${CELERY_CONCURRENCY:-2}" "$@"
        ;;
    streaming)
        if [ -z "${WORKER_TOKEN:-}" ]; then
            : "${WORKER_TOKEN_FILE:?set WORKER_TOKEN or WORKER_TOKEN_FILE}"
            wait_for_file "$WORKER_TOKEN_FILE" "${WORKER_TOKEN_WAIT_S:-300}"
            WORKER_TOKEN="$(cat "$WORKER_TOKEN_FILE")"
        fi
        exec python -m workers.streaming --platform-url "${PLATFORM_URL:?set PLATFORM_URL}" \
            --token "$WORKER_TOKEN" "$@"
        ;;
    setup)
        read_secret_files
        python manage.py migrate --noinput
        python manage.py create_demo_users
        if python manage.py help create_demo_scene >/dev/null 2>&1; then
            python manage.py create_demo_scene
        else
            echo "setup: this build has no create_demo_scene command; no demo scene" >&2
        fi
        ;;
    keygen)
        exec python /app/deploy/docker/keygen.py "$@"
        ;;
    provision-worker)
        read_secret_files
        : "${WORKER_TOKEN_FILE:?set WORKER_TOKEN_FILE}"
        if [ -s "$WORKER_TOKEN_FILE" ]; then
            echo "provision-worker: $WORKER_TOKEN_FILE exists; keeping it" >&2
            exit 0
        fi
        umask 077
        # create_worker prints the token as its last line.
        token="$(python manage.py create_worker --name "${WORKER_NAME:-compose-worker}" | tail -n 1)"
        [ -n "$token" ] || { echo "provision-worker: no token printed" >&2; exit 1; }
        printf '%s' "$token" > "$WORKER_TOKEN_FILE.tmp"
        mv "$WORKER_TOKEN_FILE.tmp" "$WORKER_TOKEN_FILE"
        echo "provision-worker: token written to $WORKER_TOKEN_FILE" >&2
        ;;
    turn)
        read_secret_files
        : "${TURN_SHARED_SECRET:?set TURN_SHARED_SECRET or TURN_SHARED_SECRET_FILE}"
        # The secret goes into a private config file, not argv (`ps` shows argv).
        umask 077
        conf=/tmp/turnserver.conf
        {
            echo "listening-port=${TURN_PORT:-3478}"
            echo "min-port=${TURN_MIN_PORT:-49160}"
            echo "max-port=${TURN_MAX_PORT:-49400}"
            echo "realm=${TURN_REALM:-vrplatform}"
            echo "use-auth-secret"
            echo "static-auth-secret=${TURN_SHARED_SECRET}"
            # Behind 1:1 NAT (a cloud VM's private address): the public address to announce.
            [ -n "${TURN_EXTERNAL_IP:-}" ] && echo "external-ip=${TURN_EXTERNAL_IP}"
            if [ -n "${TURN_TLS_CERT:-}" ] && [ -n "${TURN_TLS_KEY:-}" ]; then
                echo "tls-listening-port=${TURN_TLS_PORT:-5349}"  # turns: URLs
                echo "cert=${TURN_TLS_CERT}"
                echo "pkey=${TURN_TLS_KEY}"
            else
                echo "no-tls"
            fi
            echo "no-dtls"
            # Never relay to the cloud metadata service, multicast, or what the operator
            # lists (the data layer's networks: a TURN server must not be a way in).
            echo "denied-peer-ip=169.254.0.0-169.254.255.255"
            for range in $(echo "${TURN_DENIED_PEER_IPS:-}" | tr ',' ' '); do
                echo "denied-peer-ip=${range}"
            done
            echo "no-multicast-peers"
            echo "no-cli"
            echo "fingerprint"
            echo "no-software-attribute"
            echo "log-file=stdout"
            echo "simple-log"
            echo "pidfile=/tmp/turnserver.pid"
            echo "userdb=/tmp/turndb"
        } > "$conf"
        exec turnserver -c "$conf" "$@"
        ;;
    manage)
        read_secret_files
        exec python manage.py "$@"
        ;;
    *)
        read_secret_files
        exec "$role" "$@"
        ;;
esac
