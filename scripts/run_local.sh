#!/usr/bin/env bash
# The main job on the embedded local default: set up, generate a day of payments and
# run the real payments_daily_index DAG for it through Airflow (local profile).
#   bash scripts/run_local.sh [--date YYYY-MM-DD] [--transactions N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec python scripts/local_run.py "$@"
