# Shared environment for every project command. Source it: `source scripts/env.sh`.
# It points the plain `airflow` CLI at this project (DAGs, plugins, a local
# SQLite-backed Airflow home) and activates the project virtualenv if present.
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PROJECT_ROOT
export PAYMENTS_PROFILE="${PAYMENTS_PROFILE:-local}"
# PAYMENTS_AIRFLOW_HOME: another home for this project (the tests set it to their own copy,
# so nothing they start through these scripts lands in .local/airflow).
export AIRFLOW_HOME="${PAYMENTS_AIRFLOW_HOME:-$PROJECT_ROOT/.local/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PROJECT_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PROJECT_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=60
export AIRFLOW__LOGGING__BASE_LOG_FOLDER="$AIRFLOW_HOME/logs"
export PYTHONPATH="$PROJECT_ROOT:$PROJECT_ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
export PYSPARK_PYTHON="$PROJECT_ROOT/.venv/bin/python"
export PYSPARK_DRIVER_PYTHON="$PROJECT_ROOT/.venv/bin/python"
if [ -z "${PAYMENTS_PAN_TOKEN_KEY:-}" ] && [ -s "$PROJECT_ROOT/.local/secrets/pan_token_key" ]; then
  PAYMENTS_PAN_TOKEN_KEY="$(cat "$PROJECT_ROOT/.local/secrets/pan_token_key")"
  export PAYMENTS_PAN_TOKEN_KEY
fi
if [ -f "$PROJECT_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  VIRTUAL_ENV_DISABLE_PROMPT=1 source "$PROJECT_ROOT/.venv/bin/activate"
fi
