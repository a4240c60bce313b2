#!/usr/bin/env bash
# A local three-instance WIM-Z relay cluster behind nginx, all on loopback:
#   redis-server 127.0.0.1:$REDIS_PORT (6390), relays 127.0.0.1:9001-9003,
#   nginx http://127.0.0.1:$HTTP_PORT (8080) and https://127.0.0.1:$HTTPS_PORT
#   (8443, a certificate signed by a CA this script makes: $RUN/tls/ca.crt).
# PostgreSQL must already run (this script does not start one): it uses
# $WIMZ_PG_ADMIN (postgres://postgres@127.0.0.1:5432/postgres) to create the
# database $WIMZ_PG_DB (wimz_cluster) the instances share.
#
# Usage:
#   bash deploy/local-cluster.sh             start it all; Ctrl-C or SIGTERM stops
#                                            everything it started (so does any
#                                            relay, Redis or nginx dying)
#   bash deploy/local-cluster.sh config DIR  only write nginx's config and the TLS
#                                            files into DIR (tests start nginx on it)
# Environment: HTTP_PORT, HTTPS_PORT, REDIS_PORT, RELAY_PORTS ("9001 9002 9003"),
#   WIMZ_PG_ADMIN, WIMZ_PG_DB, PROFILE (release | debug), WIMZ_BIN (a built
#   wimz-relay: skips the build), WIMZ_CLUSTER_DIR (where logs and state go;
#   default a new /tmp/wimz-cluster.XXXXXX), NGINX_WORKER_CONNECTIONS (16384).
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT="${HTTP_PORT:-8080}"
HTTPS_PORT="${HTTPS_PORT:-8443}"
REDIS_PORT="${REDIS_PORT:-6390}"
RELAY_PORTS="${RELAY_PORTS:-9001 9002 9003}"
WORKER_CONNECTIONS="${NGINX_WORKER_CONNECTIONS:-16384}"

# --- nginx: the site (deploy/nginx.conf with local ports and paths) and a main
# config sized for the sockets it carries (see deploy/nginx.conf's header). ---
write_nginx_config() {
    local dir="$1"
    mkdir -p "$dir/tls" "$dir/nginx-tmp"
    make_tls "$dir/tls"
    # Each upstream block's server list becomes one line per relay port,
    # with the parameters of the block's first server line.
    awk -v ports="$RELAY_PORTS" '
        /^    server 127\.0\.0\.1:[0-9]+/ {
            if (!in_list) {
                params = $0; sub(/^    server 127\.0\.0\.1:[0-9]+/, "", params)
                n = split(ports, p, " ")
                for (i = 1; i <= n; i++) print "    server 127.0.0.1:" p[i] params
            }
            in_list = 1; next
        }
        { in_list = 0; print }' deploy/nginx.conf |
    sed -e "s#listen 80;#listen 127.0.0.1:$HTTP_PORT;#" \
        -e "s#listen 443 ssl;#listen 127.0.0.1:$HTTPS_PORT ssl;#" \
        -e "s#server_name relay.example.com;#server_name localhost;#" \
        -e "s#/etc/ssl/wimz-relay/fullchain.pem#$dir/tls/server.crt#" \
        -e "s#/etc/ssl/wimz-relay/privkey.pem#$dir/tls/server.key#" \
        -e "s#access_log /var/log/nginx/wimz-relay.access.log wimz;#access_log $dir/nginx-access.log wimz;#" \
        > "$dir/wimz-site.conf"
    # Each proxied socket is two connections and two open files per worker;
    # stay within what this shell may open (ulimit -Hn).
    local hard nofile
    hard="$(ulimit -Hn)"
    nofile=$((2 * WORKER_CONNECTIONS + 64))
    if [ "$hard" != unlimited ] && [ "$nofile" -gt "$hard" ]; then
        nofile="$hard"
        WORKER_CONNECTIONS=$(((hard - 64) / 2))
    fi
    cat > "$dir/nginx.conf" <<NGINX
worker_processes auto;
worker_rlimit_nofile $nofile;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections $WORKER_CONNECTIONS; }
http {
    client_body_temp_path $dir/nginx-tmp; proxy_temp_path $dir/nginx-tmp;
    fastcgi_temp_path $dir/nginx-tmp; uwsgi_temp_path $dir/nginx-tmp; scgi_temp_path $dir/nginx-tmp;
    include $dir/wimz-site.conf;
}
NGINX
}

# A CA of its own and a server certificate for localhost / 127.0.0.1 signed
# by it; clients trust ca.crt (curl --cacert, or a TLS client's root store).
make_tls() {
    local t="$1"
    [ -s "$t/server.crt" ] && return 0
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 \
        -subj "/CN=WIM-Z local cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null
    openssl req -new -nodes -newkey rsa:2048 -sha256 -subj "/CN=localhost" \
        -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$t/server.ext"
    openssl x509 -req -sha256 -days 30 -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" \
        -CAcreateserial -extfile "$t/server.ext" -out "$t/server.crt" 2>/dev/null
    chmod 600 "$t/ca.key" "$t/server.key"
}

if [ "${1:-}" = config ]; then
    [ -n "${2:-}" ] || { echo "usage: $0 config DIR" >&2; exit 2; }
    write_nginx_config "$(realpath -m "$2")"
    exit 0
fi

need() { command -v "$1" >/dev/null || { echo "installing $2..."; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need redis-server redis-server
need nginx nginx
need psql postgresql-client
need openssl openssl

PG_ADMIN="${WIMZ_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_DB="${WIMZ_PG_DB:-wimz_cluster}"
PG_URL="${PG_ADMIN%/*}/$PG_DB"
if ! psql "$PG_ADMIN" -qtAc 'select 1' >/dev/null 2>&1; then
    echo "PostgreSQL is not reachable at $PG_ADMIN; this script does not start one." >&2
    echo "Start it (Debian: pg_ctlcluster <version> main start) or set WIMZ_PG_ADMIN." >&2
    exit 1
fi

RUN="${WIMZ_CLUSTER_DIR:-$(mktemp -d /tmp/wimz-cluster.XXXXXX)}"
mkdir -p "$RUN"
RUN="$(realpath "$RUN")"
PIDS=()
NGINX_STARTED=0
cleanup() {
    trap - EXIT INT TERM
    # The relays first (SIGTERM: they close their sockets with 1012), then the rest.
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ "$NGINX_STARTED" = 1 ] && [ -f "$RUN/nginx.pid" ]; then
        kill -QUIT "$(cat "$RUN/nginx.pid")" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    if [ -f "$RUN/nginx.pid" ] && kill -0 "$(cat "$RUN/nginx.pid")" 2>/dev/null; then
        kill -TERM "$(cat "$RUN/nginx.pid")" 2>/dev/null || true
    fi
    echo "stopped; logs are in $RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${WIMZ_BIN:-}" ]; then
    BIN="$WIMZ_BIN"
else
    PROFILE="${PROFILE:-release}"   # PROFILE=debug skips the release build
    if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
    BIN="target/$PROFILE/wimz-relay"
fi

psql "$PG_ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1 \
    || psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB"

# Every relay and nginx may hold as many files as this shell may.
ulimit -n "$(ulimit -Hn)"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN" >"$RUN/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# One JWT secret for every instance (a token from one is good on all).
[ -s "$RUN/jwt_secret" ] || (umask 077; openssl rand -hex 32 > "$RUN/jwt_secret")
i=0
for p in $RELAY_PORTS; do
    i=$((i + 1))
    WIMZ__SERVER__BIND="127.0.0.1:$p" \
    WIMZ__SERVER__INSTANCE_ID="relay-$i" \
    WIMZ__SERVER__DATA_DIR="$RUN/data-$i" \
    WIMZ__STORE__URL="$PG_URL" \
    WIMZ__CLUSTER__REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    WIMZ__AUTH__JWT_SECRET="$(cat "$RUN/jwt_secret")" \
    WIMZ__SERVER__TRUSTED_PROXIES="127.0.0.1" \
        "$BIN" serve >"$RUN/relay-$i.log" 2>&1 &
    PIDS+=($!)
done

write_nginx_config "$RUN"
nginx -e "$RUN/nginx-error.log" -c "$RUN/nginx.conf"
NGINX_STARTED=1

for p in $RELAY_PORTS; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/health" >/dev/null && break; sleep 0.1; done
done
for _ in $(seq 1 50); do curl -sf --cacert "$RUN/tls/ca.crt" "https://127.0.0.1:$HTTPS_PORT/health" >/dev/null && break; sleep 0.2; done
for p in $RELAY_PORTS; do curl -s "http://127.0.0.1:$p/health"; echo; done
cat <<EOF
cluster up: http://127.0.0.1:$HTTP_PORT and https://127.0.0.1:$HTTPS_PORT (ws:// and wss:// .../ws/...)
  TLS: trust $RUN/tls/ca.crt (curl --cacert $RUN/tls/ca.crt https://127.0.0.1:$HTTPS_PORT/health)
  users and devices (the CLI on the shared store, or POST /api/auth/register and /api/devices):
    echo 'a-good-password' | WIMZ__STORE__URL=$PG_URL $BIN user add alice
    WIMZ__STORE__URL=$PG_URL $BIN device add wimz-001 --owner alice
  logs in $RUN; Ctrl-C stops everything
EOF
# Until a relay, Redis or nginx's master ends, or we are told to stop.
NGINX_MASTER="$(cat "$RUN/nginx.pid")"
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
while true; do
    for p in "${PIDS[@]}" "$NGINX_MASTER"; do
        if ! alive "$p"; then
            echo "process $p ended; stopping the cluster" >&2
            exit 1
        fi
    done
    sleep 1 &
    wait $! || true
done
