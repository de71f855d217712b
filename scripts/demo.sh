#!/usr/bin/env bash
# The README's first command (`make demo`): run the example sync DAG end to end against the
# bundled emulator, with no Volcengine account, and show what was synced.
#
#   1. a local Airflow home in .airflow/ (SQLite, made once; later runs reuse it),
#   2. the emulator on a free loopback port with a seeded data set,
#   3. the `rtcim_default` connection pointed at it (AIRFLOW_CONN_RTCIM_DEFAULT),
#   4. `airflow dags test rtcim_sync_conversations` (the daily sync example DAG),
#   5. a summary of the output file, then the emulator is stopped: nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${RTCIM_VENV:-$ROOT/.venv}  # make demo AIRFLOW=3.0 runs it from .venv-3.0
BIN="$VENV/bin"
DAG_ID=rtcim_sync_conversations

fail() { echo "demo: FAILED: $*" >&2; exit 1; }
[ -x "$BIN/airflow" ] || fail "no virtualenv at $VENV: run 'make demo' (it installs first)"

home_suffix=$(basename "$VENV"); home_suffix=${home_suffix#.venv}  # .venv-3.0: .airflow-3.0
export AIRFLOW_HOME="$ROOT/.airflow$home_suffix"  # one per Airflow: a database cannot migrate down
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags_examples"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__LOGGING__LOGGING_LEVEL=${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}
mkdir -p "$AIRFLOW_HOME"

work=$(mktemp -d)
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

# Migrate once per Airflow version (a constraints bump re-migrates; otherwise it is skipped).
airflow_version=$("$BIN/python" -c "import importlib.metadata as m; print(m.version('apache-airflow-core'))")
if [ "$(cat "$AIRFLOW_HOME/.db-ready" 2>/dev/null)" != "$airflow_version" ]; then
  echo "demo: preparing the Airflow $airflow_version metadata database in $AIRFLOW_HOME ..."
  "$BIN/airflow" db migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; fail "airflow db migrate"; }
  # Register the DAGs and their Assets as the DAG processor would (Airflow 3.0's `dags test`
  # fails an inactive Asset outlet on a fresh database otherwise).
  "$BIN/airflow" dags reserialize >"$work/reserialize.log" 2>&1 || { cat "$work/reserialize.log" >&2; fail "airflow dags reserialize"; }
  echo "$airflow_version" >"$AIRFLOW_HOME/.db-ready"
fi
# The example DAGs run their API tasks in this pool: 4 slots x 24 QPS = 96 of the account's 100.
"$BIN/airflow" pools set rtcim_api 4 "RTC IM OpenAPI: 96 of the account's 100 QPS, 24 QPS per slot" \
  >"$work/pool.log" 2>&1 || { cat "$work/pool.log" >&2; fail "airflow pools set rtcim_api"; }

echo "demo: starting the RTC IM emulator ..."
"$BIN/python" -m airflow_provider_rtcim.emulator --host 127.0.0.1 --port 0 \
  --users 5 --conversations 57 --seed 2026 --ready-file "$work/emulator.json" >"$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/emulator.json" ] && break
  kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emulator.log" >&2; fail "the emulator exited at start-up"; }
  sleep 0.1
done
[ -s "$work/emulator.json" ] || { cat "$work/emulator.log" >&2; fail "the emulator did not start within 10 s"; }

settings=$("$BIN/python" - "$work/emulator.json" <<'PY'
import json, shlex, sys
info = json.load(open(sys.argv[1]))
conn = {
    "conn_type": "rtcim",
    "login": info["access_key_id"],
    "password": info["secret_access_key"],
    "host": info["url"],
    "extra": {"app_id": info["app_id"], "region": info["region"]},
}
print("export AIRFLOW_CONN_RTCIM_DEFAULT=" + shlex.quote(json.dumps(conn)))
print("export AIRFLOW_VAR_RTCIM_USER_IDS=" + shlex.quote(json.dumps(info["user_ids"])))
print("EMULATOR_URL=" + shlex.quote(info["url"]))
PY
) || fail "could not read the emulator's ready file $work/emulator.json"
eval "$settings"
export AIRFLOW_VAR_RTCIM_OUTPUT_BASE="file://$ROOT/demo-output"
echo "demo: emulator at $EMULATOR_URL; users $AIRFLOW_VAR_RTCIM_USER_IDS"

echo "demo: airflow dags test $DAG_ID (about 20 s) ..."
if ! "$BIN/airflow" dags test "$DAG_ID" >"$work/dagtest.log" 2>&1; then
  tail -n 60 "$work/dagtest.log" >&2
  fail "airflow dags test $DAG_ID failed: the DAG run did not succeed (log above)"
fi

"$BIN/python" "$ROOT/scripts/show_output.py" "$ROOT/demo-output" "$EMULATOR_URL" "$AIRFLOW_VAR_RTCIM_USER_IDS" \
  || fail "the synced output does not match the emulator's data (see above)"
echo "demo: done; the emulator is stopped. Output stays in demo-output/ (git-ignored)."
