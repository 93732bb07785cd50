#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs lint, types and the tests on SQLite,
# PostgreSQL and MariaDB. Usage: scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${OBFLEET_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
MARIADB_URL=${OBFLEET_TEST_MARIADB_URL:-mysql://root@127.0.0.1:3306/test}

if [ "$(id -u)" = 0 ]; then
  bash scripts/system-deps.sh
  bash scripts/start-databases.sh
fi

bash scripts/venv.sh test
PY=.venv/bin/python

echo "== lint and types"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy

# The whole suite on SQLite, and the metadb-facing tests again on each database server (the
# host tests, the stand-in and the SSH layer do not touch the metadb, and the API fuzz looks for
# what the HTTP layer gets wrong, so once is enough for them; the
# browser tests run against their own server on SQLite). Four independent runs, at once:
# SQLite's is split in two, its host tests (which spend much of their time waiting on hosts)
# beside the rest, so that the CPUs stay busy. A line says when each run ends and, every 30 s,
# how far those still running have got; their logs are printed in turn at the end
# (scripts/lib/runs.sh).
source scripts/lib/runs.sh
start sqlite "$PY" -m pytest -q -m "not hosts" "$@"
start sqlite-hosts "$PY" -m pytest -q -m hosts "$@"
for url in "$PG_URL" "$MARIADB_URL"; do
  start "${url%%:*}" OBFLEET_TEST_DATABASE_URL="$url" "$PY" -m pytest -q -m "not hosts and not browser" \
    --ignore=tests/test_standin.py --ignore=tests/test_ssh.py --ignore=tests/test_testhosts.py \
    --ignore=tests/api/test_fuzz.py "$@"
done
finish
