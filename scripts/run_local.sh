#!/usr/bin/env bash
# The main job on the embedded local default (docs/main_job.md): set up, start the
# embedded Kafka broker and the streaming app (through payments_stream_supervisor),
# stream generated traffic, run payments_daily_index for the day through Airflow,
# print the summary against the ground truth and write the HTML dashboard. On a terminal the
# progress is live (bars while streaming, a task table while each DAG runs); without one, or
# with PAYMENTS_PROGRESS=plain, plain lines.
#   bash scripts/run_local.sh [--date YYYY-MM-DD] [--transactions N] [--stream-seconds S] [--stream-rate R] [--no-stream]
# The Airflow UI with the project's DAGs, connections, variables and pools:
#   bash scripts/run_local.sh ui        # http://localhost:8080 (AIRFLOW_PORT to change)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
if [ "${1:-}" = "ui" ]; then
  port="${AIRFLOW_PORT:-8080}"
  if python -c "import socket,sys; s=socket.socket(); s.bind(('0.0.0.0', int(sys.argv[1])))" "$port" 2>/dev/null; then
    export AIRFLOW__API__PORT="$port"
    echo "[ui] Airflow UI on http://localhost:$port (login printed below by 'airflow standalone'); Ctrl-C stops it"
    exec airflow standalone
  fi
  echo "[ui] port $port is busy: stop what uses it (ss -ltnp | grep :$port) or run AIRFLOW_PORT=<free port> bash scripts/run_local.sh ui" >&2
  exit 1
fi
exec python scripts/local_run.py "$@"
