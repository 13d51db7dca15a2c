#!/bin/bash
# Amazon MWAA startup script: MWAA runs it on every scheduler, worker and web server
# before Airflow starts. scripts/deploy.py uploads it as startup.sh after filling the
# block below from the Terraform output `mwaa_startup_environment`, so the runtime
# profile include/profiles/aws.yaml finds every ${NAME} it references.

# BEGIN PAYMENTS ENVIRONMENT (rendered by scripts/deploy.py; do not edit by hand)
# END PAYMENTS ENVIRONMENT

# The runtime profiles live in include/ next to the project root, which on MWAA is
# $AIRFLOW_HOME (the parent of plugins/). MWAA only syncs dags/ and plugins.zip, so the
# deploy uploads include/ under dags/include/ and this links it into place.
AIRFLOW_ROOT="${AIRFLOW_HOME:-/usr/local/airflow}"
if [ ! -e "$AIRFLOW_ROOT/include" ] || [ -L "$AIRFLOW_ROOT/include" ]; then
  ln -sfn "$AIRFLOW_ROOT/dags/include" "$AIRFLOW_ROOT/include" \
    || echo "mwaa_startup: could not link $AIRFLOW_ROOT/include to dags/include" >&2
fi
