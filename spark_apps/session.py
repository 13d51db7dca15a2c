"""Build the SparkSession every job and test uses, with the platform's fixed settings."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import SparkSession

# Settings every job runs with, whatever the profile adds (correctness first, then the plan-code cache).
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    # Compiled plan code is cached by its source text; Spark's default of 100 entries is fewer
    # than the stream's micro-batch plans generate, so every batch compiled ~100 classes again
    # (then JIT-compiled them again). Static: it has to be set when the session is built.
    "spark.sql.codegen.cache.maxEntries": "1000",
    # PySpark records the Python call site of every DataFrame/Column call for error messages:
    # five extra JVM round trips per call, which made building the stream's per-batch scoring
    # plan (hundreds of column expressions) take over a second. Error messages stay; only the
    # Python file:line of the DataFrame query context goes.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}


def build_session(app_name: str, master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in {**BASE_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
