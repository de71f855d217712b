#!/usr/bin/env bash
# `make e2e`: the deployment tests (tests/e2e) against a real Airflow started from .venv:
# api-server, scheduler (LocalExecutor), dag-processor and triggerer as separate processes,
# the emulator, and the connection form in headless Chromium. See docs/deployment-tests.md.
#
# Installs Debian's chromium + chromium-driver when missing (as root, on CI's fresh machine).
# The deployment lives in a temporary folder and is stopped at the end, also on failure or
# Ctrl-C; its logs are copied to e2e-artifacts/ when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
AIRFLOW_VENV=${RTCIM_E2E_AIRFLOW_VENV:-$ROOT/.venv}  # the deployment runs from the project venv
[ -x "$AIRFLOW_VENV/bin/airflow" ] || fail "no $AIRFLOW_VENV: run 'make e2e' (it installs first)"
export RTCIM_E2E_AIRFLOW_VENV=$AIRFLOW_VENV
[ -x "$ROOT/.venv-e2e/bin/pytest" ] || fail "no .venv-e2e: run 'make e2e' (it installs first)"

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root"
  echo "e2e: installing ${need[*]} from Debian ..."
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >/dev/null || fail "apt-get update"
  timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null || fail "apt-get install ${need[*]}"
fi

work=$(mktemp -d /tmp/rtcim-e2e.XXXXXX)
artifacts="$ROOT/e2e-artifacts"
mkdir -p "$artifacts"
pytest_pid=""
cleanup() {
  status=$?
  if [ -n "$pytest_pid" ] && kill -0 "$pytest_pid" 2>/dev/null; then
    kill -TERM "$pytest_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pytest_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pytest_pid" 2>/dev/null || true
  fi
  # whatever the harness started and could not stop (it records every process group it made)
  if [ -f "$work/pids" ]; then
    while read -r pid; do
      kill -TERM -- "-$pid" 2>/dev/null || true
    done <"$work/pids"
    sleep 2
    while read -r pid; do
      kill -KILL -- "-$pid" 2>/dev/null || true
    done <"$work/pids"
  fi
  if [ "$status" != 0 ] && [ -d "$work/airflow_home/logs" ]; then
    rm -rf "$artifacts/logs" && cp -r "$work/airflow_home/logs" "$artifacts/logs" 2>/dev/null || true
    cp "$work"/*.log "$artifacts/" 2>/dev/null || true
    echo "e2e: the deployment's logs are in $artifacts/logs" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'echo "e2e: interrupted" >&2; exit 130' INT TERM

echo "e2e: a real Airflow from .venv in $work (logs: e2e-artifacts/ on failure) ..."
start=$(date +%s)
# --confcutdir: only tests/e2e/conftest.py (tests/conftest.py sets up the unit tests' Airflow)
RTCIM_E2E=1 RTCIM_E2E_WORKDIR="$work" RTCIM_E2E_ARTIFACTS="$artifacts" \
  "$ROOT/.venv-e2e/bin/pytest" tests/e2e --confcutdir=tests/e2e -p no:cacheprovider \
  --timeout=600 -v "$@" &
pytest_pid=$!
set +e
wait "$pytest_pid"
rc=$?
set -e
pytest_pid=""
echo "e2e: finished in $(( $(date +%s) - start )) s (exit $rc); screenshots in e2e-artifacts/"
exit "$rc"
