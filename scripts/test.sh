#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite: ruff lint, then
# pytest (unit, spark, dags, aws via moto, kafka, infra, e2e).
#   bash scripts/test.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# The dashboard test opens the page in Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "[test] installing chromium (dashboard browser test)"
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "[test] chromium install failed; the browser test will say why"
fi
# shellcheck source=scripts/env.sh
source scripts/env.sh
echo "[test] ruff check, ruff format --check"
ruff check .
ruff format --check .
echo "[test] pytest"
python -m pytest "$@"
