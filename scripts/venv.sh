#!/usr/bin/env bash
# Make .venv and install obfleet (editable) into it, once per change of pyproject.
# Usage: scripts/venv.sh [runtime|test]
#   runtime: what `obfleet serve` needs, nothing more (`make run`)
#   test:    also the test toolchain: pytest, ruff, mypy, schemathesis (the default: `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-test}
case "$kind" in
  runtime) spec=. ;;
  test) spec='.[test]' ;;
  *) echo "usage: $0 [runtime|test]" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# One stamp per kind: a runtime install does not count as having the test toolchain.
stamp=.venv/.obfleet-installed-$kind
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e "$spec"
  touch "$stamp"
fi
