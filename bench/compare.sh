#!/usr/bin/env bash
# Relay vs floor, same generator, same box, alternating (docs/BENCHMARKS.md,
# "Relay vs floor"). Each run starts a fresh relay or floor process on
# loopback, drives it with `wimz-loadtest --relay-pid`, stops it, and keeps
# the JSON report; bench/summarise.py prints the medians.
#
#   bench/compare.sh OUT_DIR RUNS LOAD...      LOAD = ROBOTS:APPS:RATE:SECONDS or idle:ROBOTS
#   RELAY=target/release/wimz-relay FLOOR=target/release/floor-relay \
#   LT=target/release/wimz-loadtest bench/compare.sh /tmp/cmp 3 1000:2:5:15 2000:2:10:15 idle:5000
#
# KINDS="relay floor" (default) picks what is run; a second relay binary
# to compare with is RELAY_B=path, kind `relay_b` (CONFIG_B=its config
# file, when an older build does not know today's config/default.toml keys). Runs alternate the order
# of the kinds from one run to the next. Loopback only; every process it
# starts it stops.
set -euo pipefail
OUT=$1; RUNS=$2; shift 2
RELAY=${RELAY:-target/release/wimz-relay}
RELAY_B=${RELAY_B:-}
FLOOR=${FLOOR:-target/release/floor-relay}
LT=${LT:-target/release/wimz-loadtest}
KINDS=${KINDS:-relay floor}
RPORT=${RPORT:-18000}
FPORT=${FPORT:-18100}
mkdir -p "$OUT/relay-data"
SOURCES=127.0.0.2-127.0.0.9

start() { # kind -> sets PID, BASE
  case $1 in
    relay|relay_b)
      local bin=$RELAY cfg=config/default.toml
      [ "$1" = relay_b ] && bin=$RELAY_B && cfg=${CONFIG_B:-$cfg}
      WIMZ__SERVER__BIND=127.0.0.1:$RPORT \
      WIMZ__STORE__URL=sqlite://$OUT/relay-data/relay.db \
      WIMZ__SERVER__DATA_DIR=$OUT/relay-data \
      WIMZ__AUTH__JWT_SECRET=loadtest-secret-loadtest-secret-0123456 \
      WIMZ__LOG__LEVEL=warn \
      WIMZ__LIMITS__MESSAGES_PER_S=1000 WIMZ__LIMITS__MESSAGES_BURST=1000 \
      WIMZ__CAPS__SOCKETS_PER_IP=0 WIMZ__CAPS__APP_SOCKETS_PER_USER=0 \
      WIMZ__THROTTLE__LOGIN_PER_IP=off WIMZ__THROTTLE__REGISTER_PER_IP=off \
        "$bin" serve --config "$cfg" >>"$OUT/$1.log" 2>&1 &
      PID=$!; BASE=http://127.0.0.1:$RPORT ;;
    floor)
      "$FLOOR" --bind 127.0.0.1:$FPORT >>"$OUT/floor.log" 2>&1 &
      PID=$!; BASE=http://127.0.0.1:$FPORT ;;
  esac
  for _ in $(seq 100); do
    curl -sf "$BASE/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "compare: $1 did not start" >&2; kill "$PID"; exit 1
}

stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
trap stop EXIT

run_one() { # kind load run
  local kind=$1 load=$2 run=$3 name args
  start "$kind"
  if [[ $load == idle:* ]]; then
    name="idle-${load#idle:}"
    args=(--scenario idle --robots "${load#idle:}" --apps-per-robot 1 --duration 10)
  else
    IFS=: read -r robots apps rate secs <<<"$load"
    name="steady-$robots-$apps-$rate"
    args=(--scenario steady --robots "$robots" --apps-per-robot "$apps" --rate "$rate" --duration "$secs")
  fi
  local json="$OUT/$kind.$name.$run.json"
  echo "compare: run $run $kind $name (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  "$LT" --target "$BASE" --provision "$OUT/prov-${kind%_b}.json" --source-ips $SOURCES \
    --relay-pid "$PID" --quiet --settle 20 --json "$json" "${args[@]}" >"$OUT/$kind.$name.$run.txt" 2>&1 || true
  echo "loadavg $(cat /proc/loadavg)" >>"$OUT/$kind.$name.$run.txt"
  stop
}

# Provision (and, for the relay, log in once and keep the tokens) before any
# measured run, so no measured relay has hashed a password.
max=1
for load in "$@"; do
  r=${load%%:*}; [[ $load == idle:* ]] && r=${load#idle:}
  (( r > max )) && max=$r
done
for kind in $KINDS; do
  start "$kind"
  "$LT" --target "$BASE" --provision "$OUT/prov-${kind%_b}.json" --source-ips $SOURCES \
    --scenario idle --robots "$max" --apps-per-robot 1 --duration 1 --quiet >/dev/null 2>&1 || true
  stop
done

for run in $(seq "$RUNS"); do
  order=($KINDS)
  (( run % 2 == 0 )) && order=($(printf '%s\n' "${order[@]}" | tac))
  for load in "$@"; do
    for kind in "${order[@]}"; do
      run_one "$kind" "$load" "$run"
    done
  done
done
