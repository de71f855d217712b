#!/usr/bin/env bash
# `make e2e-celery`: the example mapped sync on CeleryExecutor, Postgres and Redis, two workers.
# A tested recipe (docs/deployment-tests.md walks through it): copy the steps you need.
#
#   1. Postgres (initdb/pg_ctl as the `postgres` user, in a temp dir, on a free port) and Redis
#   2. the RTC IM emulator, with its account QPS limit on (100) and some latency
#   3. Airflow configured for CeleryExecutor (metadata DB and result backend on Postgres,
#      broker on Redis), `airflow db migrate`, the `rtcim_api` pool (4 slots)
#   4. api-server, scheduler, dag-processor, and two Celery workers, each with its own log
#      server port (the default, 8793, can only be taken once per machine)
#   5. scripts/celery_check.py: unpauses rtcim_sync_conversations_mapped, waits for its run and
#      asserts: at most 4 batch tasks at once (the pool), batches on both workers, no 429 at the
#      emulator, and at least 0.9 of the 96 QPS budget while the pool is full
#
# Everything listens on 127.0.0.1 only, on free ports; every process is stopped at the end,
# also on failure or Ctrl-C; every wait is bounded. Needs root on a fresh machine (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${RTCIM_CELERY_VENV:-$ROOT/.venv-celery}
BIN="$VENV/bin"
fail() { echo "e2e-celery: FAILED: $*" >&2; exit 1; }
say() { echo "e2e-celery: $*"; }
[ -x "$BIN/airflow" ] || fail "no $VENV: run 'make e2e-celery' (it installs it from constraints-celery.txt)"

# --- 0. system packages (Debian): Postgres and Redis ------------------------------------------
need=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${need[*]}: apt-get install ${need[*]} (as root)"
  say "installing ${need[*]} from Debian ..."
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >/dev/null || fail "apt-get update"
  timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null || fail "apt-get install"
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
id postgres >/dev/null 2>&1 || fail "no postgres user (the postgresql package makes it)"

free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/rtcim-celery.XXXXXX)
chmod 755 "$work"
pids=()
pg_started=""
cleanup() {
  status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [ -n "$pg_started" ]; then
    timeout 60 runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [ "$status" != 0 ]; then
    mkdir -p "$ROOT/e2e-artifacts/celery"
    cp -r "$work"/*.log "$work/airflow_home/logs" "$ROOT/e2e-artifacts/celery/" 2>/dev/null || true
    echo "e2e-celery: logs copied to e2e-artifacts/celery/" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'echo "e2e-celery: interrupted" >&2; exit 130' INT TERM

# start NAME CMD...: a background process in its own process group, output to $work/NAME.log
start() {
  local name=$1
  shift
  setsid "$@" >"$work/$name.log" 2>&1 </dev/null &
  pids+=($!)
}
wait_until() {  # wait_until SECONDS WHAT CMD...
  local secs=$1 what=$2
  shift 2
  for _ in $(seq 1 "$((secs * 2))"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  fail "$what: not within $secs s"
}
began=$(date +%s)

# --- 1. Postgres and Redis ---------------------------------------------------------------------
PG_PORT=$(free_port)
mkdir -p "$work/pg" && chown postgres: "$work/pg"
say "Postgres ($PG_BIN) on 127.0.0.1:$PG_PORT, Redis ..."
runuser -u postgres -- "$PG_BIN/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; fail "initdb"; }
pg_started=1
timeout 90 runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -w -t 60 \
  -o "-p $PG_PORT -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
  || { cat "$work/pg/postgres.log" >&2; fail "pg_ctl start"; }
timeout 60 runuser -u postgres -- psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q \
  -c "CREATE USER airflow PASSWORD 'airflow'" -c "CREATE DATABASE airflow OWNER airflow" \
  || fail "creating the airflow database"

REDIS_PORT=$(free_port)
start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
wait_until 30 "redis-server answering PING" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping

# --- 2. the emulator: 32 users x 2000 conversations = 3200 pages; 8 batches of 4 users ----------
start emulator "$BIN/python" -m airflow_provider_rtcim.emulator --host 127.0.0.1 --port 0 \
  --users 32 --conversations 2000 --seed 9 --qps 100 --latency 0.05 --ready-file "$work/emulator.json"
wait_until 60 "the emulator's ready file" test -s "$work/emulator.json"
eval "$("$BIN/python" - "$work/emulator.json" <<'PY'
import json, shlex, sys
info = json.load(open(sys.argv[1]))
conn = {"conn_type": "rtcim", "login": info["access_key_id"], "password": info["secret_access_key"],
        "host": info["url"], "extra": {"app_id": info["app_id"], "region": info["region"]}}
print("export AIRFLOW_CONN_RTCIM_DEFAULT=" + shlex.quote(json.dumps(conn)))
print("export AIRFLOW_VAR_RTCIM_USER_IDS=" + shlex.quote(json.dumps(info["user_ids"])))
print("EMULATOR_URL=" + shlex.quote(info["url"]))
PY
)"

# --- 3. Airflow on CeleryExecutor ---------------------------------------------------------------
API_PORT=$(free_port)
export PYTHONPATH="$ROOT"  # the package from this checkout
export AIRFLOW_HOME="$work/airflow_home"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags_examples"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CORE__PARALLELISM=16
export AIRFLOW__CORE__FERNET_KEY=$("$BIN/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://airflow:airflow@127.0.0.1:$PG_PORT/airflow"
export AIRFLOW__CELERY__BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
# SQLAlchemy 2.1 needs the driver named: db+postgresql+psycopg2://, not db+postgresql://
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql+psycopg2://airflow:airflow@127.0.0.1:$PG_PORT/airflow"
export AIRFLOW__CELERY__WORKER_CONCURRENCY=4
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$API_PORT
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$API_PORT"
export AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$API_PORT/execution/"
# every process must share these (tasks authenticate to the api-server with JWTs it signed)
export AIRFLOW__API__SECRET_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_hex(16))')
export AIRFLOW__API_AUTH__JWT_SECRET=$("$BIN/python" -c 'import secrets; print(secrets.token_hex(32))')
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
export AIRFLOW_VAR_RTCIM_OUTPUT_BASE="file://$work/output"  # one machine: a local folder will do
export AIRFLOW_VAR_RTCIM_BATCH_SIZE=4
mkdir -p "$AIRFLOW_HOME"
ADMIN_PASSWORD=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))')
echo "{\"admin\": \"$ADMIN_PASSWORD\"}" >"$AIRFLOW_HOME/passwords.json"

say "airflow db migrate (Postgres) ..."
timeout 300 "$BIN/airflow" db migrate >"$work/migrate.log" 2>&1 || { tail -n 40 "$work/migrate.log" >&2; fail "airflow db migrate"; }
timeout 120 "$BIN/airflow" pools set rtcim_api 4 "RTC IM OpenAPI: 96 of the account's 100 QPS, 24 QPS per slot" \
  >"$work/pool.log" 2>&1 || { cat "$work/pool.log" >&2; fail "airflow pools set"; }

# --- 4. the services and two workers -----------------------------------------------------------
say "api-server on 127.0.0.1:$API_PORT, scheduler, dag-processor, two Celery workers ..."
start api-server "$BIN/airflow" api-server --host 127.0.0.1 --port "$API_PORT"
start scheduler "$BIN/airflow" scheduler
start dag-processor "$BIN/airflow" dag-processor
for n in 1 2; do
  # each worker's log server needs a port of its own
  start "worker$n" env AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$(free_port)" \
    "$BIN/airflow" celery worker --celery-hostname "worker$n@%h" --concurrency 4
done
wait_until 180 "the api-server" curl -fsS "http://127.0.0.1:$API_PORT/api/v2/monitor/health"
for n in 1 2; do
  wait_until 180 "celery worker$n to be ready" grep -q "worker$n@.* ready" "$work/worker$n.log"
done
say "ready after $(( $(date +%s) - began )) s"

# --- 5. run the mapped DAG and check it --------------------------------------------------------
timeout 900 "$BIN/python" "$ROOT/scripts/celery_check.py" \
  --api "http://127.0.0.1:$API_PORT" --user admin --password="$ADMIN_PASSWORD" \
  --emulator "$EMULATOR_URL" --output "$work/output" --worker-logs "$work/worker1.log" "$work/worker2.log" \
  || fail "the checks did not pass (above)"
say "done in $(( $(date +%s) - began )) s; everything is stopped"
