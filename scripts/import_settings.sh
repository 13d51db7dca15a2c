#!/usr/bin/env bash
# Import the connections, variables and pools of airflow_settings.yaml into the Airflow home of
# the environment (AIRFLOW_HOME, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN; scripts/setup.sh runs it
# after sourcing scripts/env.sh) with Airflow's own commands:
#   airflow connections import --overwrite <home>/settings/connections.json
#   airflow variables import --action-on-existing-key overwrite <home>/settings/variables.json
#   airflow pools import <home>/settings/pools.json
# airflow_settings.yaml stays the one file to edit: devtools.airflow_settings validates it and
# writes those JSON files; Airflow writes its own database. Skipped (well under a second) when the
# files are unchanged since the last import. Entries removed from the YAML are not deleted.
#   bash scripts/import_settings.sh [airflow_settings.yaml]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SETTINGS_FILE="${1:-$ROOT/airflow_settings.yaml}"
: "${AIRFLOW_HOME:?set AIRFLOW_HOME (source scripts/env.sh)}"
SETTINGS_DIR="$AIRFLOW_HOME/settings"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

(cd "$ROOT" && python -m devtools.airflow_settings convert "$SETTINGS_FILE" "$SETTINGS_DIR") > /dev/null \
  || die "$SETTINGS_FILE is not valid (the error is above)"
want="$(cat "$SETTINGS_DIR/connections.json" "$SETTINGS_DIR/variables.json" "$SETTINGS_DIR/pools.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$SETTINGS_DIR/.imported" 2>/dev/null)" = "$want" ]; then
  say "airflow_settings.yaml is already imported"
  exit 0
fi
say "importing connections, variables and pools from $(basename "$SETTINGS_FILE")"
log="$SETTINGS_DIR/import.log"
{
  airflow connections import --overwrite "$SETTINGS_DIR/connections.json" \
    && airflow variables import --action-on-existing-key overwrite "$SETTINGS_DIR/variables.json" \
    && airflow pools import "$SETTINGS_DIR/pools.json"
} > "$log" 2>&1 || die "airflow ... import failed, see $log"
# The import commands report a rejected entry on stdout and still exit 0.
! grep -E "Could not import|import failed|Failed to update" "$log" >&2 || die "an entry was not imported, see $log"
echo "$want" > "$SETTINGS_DIR/.imported"
