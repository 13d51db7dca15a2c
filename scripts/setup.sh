#!/usr/bin/env bash
# Set up everything the project needs on this machine, idempotently:
#   1. check the prerequisites (Python 3.11+, Java 17, Maven);
#   2. create .venv and install the pinned dependencies (skipped when unchanged);
#   3. create .venv-tools for checkov (its pins conflict with Airflow's);
#   4. resolve the JVM manifest (jvm/pom.xml) into .local/jvm (skipped when unchanged);
#   5. prepare a local Airflow home in .local/airflow (SQLite) and import the connections,
#      variables and pools of airflow_settings.yaml with Airflow's own `airflow connections|
#      variables|pools import` (skipped when unchanged).
# A second run is fast and changes nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

find_python() {
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

PYTHON_BIN="$(find_python)" || die "Python 3.11 or newer is required but was not found on PATH.
  Install it (for example: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11."
command -v java >/dev/null 2>&1 || die "Java 17 is required by Spark but 'java' was not found on PATH.
  Install it (for example: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME and PATH."
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
[ "${java_major:-0}" -ge 17 ] || die "Java 17 is required by Spark 4.0 but 'java -version' reports '${java_major:-unknown}'.
  Install OpenJDK 17 and put it first on PATH."

command -v mvn >/dev/null 2>&1 || die "Maven is required to fetch the pinned JVM jars (Kafka connector, broker) but 'mvn' was not found on PATH.
  Install it (for example: apt-get install maven)."

# Machine-level pip config may list local index folders that do not exist; hide that noise.
pip_install() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

VENV="$ROOT/.venv"
want="$(stamp_of requirements.txt requirements-local.txt requirements-test.txt constraints.txt)-$("$PYTHON_BIN" -c 'import sys; print(sys.version_info[:2])')"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$want" ]; then
  say "installing pinned dependencies into .venv (first run takes a few minutes)"
  [ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
  pip_install "$VENV/bin/pip" install -q --upgrade "pip==25.3"
  mkdir -p "$ROOT/.local"
  # MWAA reads the lock from its DAGs folder; locally it sits at the repo root.
  sed "s#^--constraint .*#--constraint $ROOT/constraints.txt#" requirements.txt > "$ROOT/.local/requirements.resolved.txt"
  pip_install "$VENV/bin/pip" install -q -r "$ROOT/.local/requirements.resolved.txt" \
    -r requirements-local.txt -r requirements-test.txt -c constraints.txt
  echo "$want" > "$VENV/.installed"
else
  say ".venv is up to date"
fi

TOOLS="$ROOT/.venv-tools"
want_tools="$(stamp_of requirements-tools.txt constraints-tools.txt)"
if [ ! -x "$TOOLS/bin/checkov" ] || [ "$(cat "$TOOLS/.installed" 2>/dev/null)" != "$want_tools" ]; then
  say "installing checkov into .venv-tools"
  [ -x "$TOOLS/bin/python" ] || "$PYTHON_BIN" -m venv "$TOOLS"
  pip_install "$TOOLS/bin/pip" install -q --upgrade "pip==25.3"
  pip_install "$TOOLS/bin/pip" install -q -r requirements-tools.txt -c constraints-tools.txt
  echo "$want_tools" > "$TOOLS/.installed"
else
  say ".venv-tools is up to date"
fi

# The JVM side (DESIGN decision 9): Spark's Kafka connector, MSK IAM auth, the local broker.
JVM_DIR="$ROOT/.local/jvm"
want_jvm="$(find jvm \( -name pom.xml -o -name "*.java" \) -not -path "*/target/*" | sort | xargs cat scripts/jvm_jars.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$JVM_DIR/.installed" 2>/dev/null)" != "$want_jvm" ]; then
  say "resolving the JVM manifest (jvm/pom.xml) into .local/jvm"
  bash scripts/jvm_jars.sh "$JVM_DIR" spark broker
  echo "$want_jvm" > "$JVM_DIR/.installed"
else
  say ".local/jvm is up to date"
fi

# The local PAN tokenization key (the aws profile reads Secrets Manager instead).
mkdir -p "$ROOT/.local/secrets"
if [ ! -s "$ROOT/.local/secrets/pan_token_key" ]; then
  (umask 077 && "$PYTHON_BIN" -c 'import secrets; print(secrets.token_hex(32))' > "$ROOT/.local/secrets/pan_token_key")
  say "created a local PAN tokenization key in .local/secrets/"
fi

# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
mkdir -p "$AIRFLOW_HOME"
SETTINGS_DIR="$AIRFLOW_HOME/settings"
if [ ! -f "$AIRFLOW_HOME/airflow.db" ]; then
  say "creating the local Airflow metadata DB in .local/airflow"
  airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1 || die "airflow db migrate failed, see $AIRFLOW_HOME/db-migrate.log"
  rm -f "$SETTINGS_DIR/.imported"  # a new database has none of the settings yet
fi

bash "$ROOT/scripts/import_settings.sh" "$ROOT/airflow_settings.yaml"
say "ready: source scripts/env.sh to use the airflow CLI against this project"
