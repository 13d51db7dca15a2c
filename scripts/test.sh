#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite: ruff lint, then
# pytest (unit, spark, dags, aws via moto, kafka, infra, e2e).
#   bash scripts/test.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
echo "[test] ruff check"
ruff check .
echo "[test] pytest"
python -m pytest "$@"
