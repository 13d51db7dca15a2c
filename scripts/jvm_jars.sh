#!/usr/bin/env bash
# Resolve the JVM manifest (jvm/pom.xml) into a folder of jars, one sub-folder per module:
#   <dest>/spark/    Spark's Kafka connector + MSK IAM auth (spark.jars of every job)
#   <dest>/broker/   the local Apache Kafka broker (KRaft)
# Used by scripts/setup.sh (dest .local/jvm, both modules) and by the Dockerfile (the EMR
# on EKS image: dest /opt/payments/jars, module spark only), so local runs, CI and EMR run
# the same jars. Maven verifies every download's checksum (--strict-checksums).
#   bash scripts/jvm_jars.sh <dest> [module ...]      (default modules: spark broker)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:?usage: jvm_jars.sh <dest> [module ...]}"
shift
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=(spark broker)
command -v mvn >/dev/null 2>&1 || { echo "[jvm] ERROR: Maven ('mvn') is required to fetch the pinned jars (apt-get install maven)" >&2; exit 1; }
for module in "${MODULES[@]}"; do
  [ -f "$ROOT/jvm/$module/pom.xml" ] || { echo "[jvm] ERROR: no module jvm/$module" >&2; exit 1; }
  tmp="$DEST/.$module.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # -am: the modules it depends on are built first (stream-ops, the project's own operators).
  mvn -B -q -Dstyle.color=never --strict-checksums -f "$ROOT/jvm/pom.xml" -pl "$module" -am \
    package dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
  rm -rf "${DEST:?}/$module"
  mv "$tmp" "$DEST/$module"
  echo "[jvm] $module: $(find "$DEST/$module" -name '*.jar' | wc -l) jars in $DEST/$module"
done
