#!/usr/bin/env bash
# A local three-instance WIM-Z relay cluster behind nginx, all on loopback:
#   redis-server 127.0.0.1:6390, PostgreSQL 127.0.0.1:5432 (database wimz_cluster),
#   relays 127.0.0.1:9001-9003, nginx 127.0.0.1:8080 (use this one).
# Usage: bash deploy/local-cluster.sh   (Ctrl-C stops everything it started)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="$(mktemp -d /tmp/wimz-cluster.XXXXXX)"
PG_ADMIN="${WIMZ_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_URL="${PG_ADMIN%/*}/wimz_cluster"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$RUN/nginx.pid" ] && kill "$(cat "$RUN/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    echo "stopped; logs were in $RUN"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "installing $2..."; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need redis-server redis-server
need nginx nginx
need psql postgresql-client

PROFILE="${PROFILE:-release}"   # PROFILE=debug skips the release build
if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
BIN="target/$PROFILE/wimz-relay"

psql "$PG_ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname='wimz_cluster'" | grep -q 1 \
    || psql "$PG_ADMIN" -qc "CREATE DATABASE wimz_cluster"

redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN" >"$RUN/redis.log" 2>&1 &
PIDS+=($!)
sleep 0.5

SECRET_FILE="$RUN/jwt_secret"; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SECRET_FILE"
for i in 1 2 3; do
    WIMZ__SERVER__BIND="127.0.0.1:900$i" \
    WIMZ__SERVER__INSTANCE_ID="relay-$i" \
    WIMZ__SERVER__DATA_DIR="$RUN/data-$i" \
    WIMZ__STORE__URL="$PG_URL" \
    WIMZ__CLUSTER__REDIS_URL="redis://127.0.0.1:6390" \
    WIMZ__AUTH__JWT_SECRET="$(cat "$SECRET_FILE")" \
    WIMZ__SERVER__TRUSTED_PROXIES="127.0.0.1" \
        "$BIN" serve >"$RUN/relay-$i.log" 2>&1 &
    PIDS+=($!)
done

sed -e 's#listen 80;#listen 127.0.0.1:8080;#' \
    -e 's#access_log /var/log/nginx/wimz-relay.access.log wimz;#access_log '"$RUN"'/nginx-access.log wimz;#' \
    deploy/nginx.conf > "$RUN/wimz.conf"
cat > "$RUN/nginx.conf" <<NGINX
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log;
events { worker_connections 4096; }
http {
    client_body_temp_path $RUN; proxy_temp_path $RUN; fastcgi_temp_path $RUN; uwsgi_temp_path $RUN; scgi_temp_path $RUN;
    include $RUN/wimz.conf;
}
NGINX
nginx -c "$RUN/nginx.conf"

for _ in $(seq 1 50); do curl -sf http://127.0.0.1:8080/health >/dev/null && break; sleep 0.2; done
for i in 1 2 3; do curl -s "http://127.0.0.1:900$i/health"; echo; done
echo "cluster up: http://127.0.0.1:8080 (ws://127.0.0.1:8080/ws/...); logs in $RUN; Ctrl-C to stop"
wait "${PIDS[1]}"
