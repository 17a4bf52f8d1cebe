#!/usr/bin/env bash
# `make test`: install what the tests need, then run the whole suite three ways:
#   1. unit, API, websocket and multi-process tests on SQLite (with a real redis-server),
#   2. the same on a throwaway PostgreSQL cluster,
#   3. the browser tests in headless Chromium.
# Any failure fails the run (exit code != 0).
set -uo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The queue page's JavaScript unit tests run on Node's built-in test runner.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The webhook HTTPS test makes a throwaway certificate with openssl.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null || {
      echo "apt-get install ${need_apt[*]} failed" >&2; exit 1; }
  else
    echo "Missing ${need_apt[*]}: install them (sudo apt-get install ${need_apt[*]}) or run make test as root." >&2
    exit 1
  fi
fi

scripts/venv.sh requirements-dev.txt || exit 1
PY=.venv/bin/python
mkdir -p test-artifacts

status=0
run() {
  echo
  echo "=== $1"
  shift
  "$@" || status=1
}

run "ruff" sh -c ".venv/bin/ruff check . && .venv/bin/ruff format --check ."
run "import layers (lint-imports, contracts in pyproject.toml)" .venv/bin/lint-imports --no-cache
run "JavaScript unit tests (node --test)" node --test tests/js/
# The two database runs are independent (each starts its own Redis, PostgreSQL and SQLite file),
# so they run side by side, one per core; their output is printed whole when both have ended.
# COUNTERSIGN_TEST_SERIAL=1 runs them one after the other, printing as they go.
if [ "${COUNTERSIGN_TEST_SERIAL:-0}" = 1 ]; then
  run "tests on SQLite" $PY -m pytest "$@"
  run "tests on PostgreSQL" env COUNTERSIGN_TEST_DB=postgres $PY -m pytest "$@"
else
  echo
  echo "=== tests on SQLite and on PostgreSQL, side by side (logs: test-artifacts/pytest-*.log)"
  $PY -m pytest "$@" >test-artifacts/pytest-sqlite.log 2>&1 &
  sqlite_pid=$!
  env COUNTERSIGN_TEST_DB=postgres $PY -m pytest "$@" >test-artifacts/pytest-postgres.log 2>&1 &
  postgres_pid=$!
  wait $sqlite_pid; sqlite_rc=$?
  wait $postgres_pid; postgres_rc=$?
  for db in sqlite postgres; do
    echo
    echo "=== tests on $db"
    cat "test-artifacts/pytest-$db.log"
  done
  [ $sqlite_rc -eq 0 ] || { echo "tests on SQLite FAILED (exit $sqlite_rc)"; status=1; }
  [ $postgres_rc -eq 0 ] || { echo "tests on PostgreSQL FAILED (exit $postgres_rc)"; status=1; }
fi
run "browser tests (headless Chromium)" env DJANGO_ALLOW_ASYNC_UNSAFE=true $PY -m pytest -m browser -p no:asyncio "$@"

echo
if [ $status -ne 0 ]; then
  echo "make test: FAILED (see the sections above)"
else
  echo "make test: all suites passed"
fi
exit $status
