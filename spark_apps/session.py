"""Build the SparkSession every job and test uses, with the platform's fixed settings."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import SparkSession

from spark_apps.jvm import spark_jars_conf

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
    """The session; with ``master`` (a session started in this process, not by spark-submit or
    EMR, which put the jars on the classpath themselves) the JVM manifest's Spark jars are in
    ``spark.jars`` unless ``conf`` names them."""
    builder = SparkSession.builder.appName(app_name)
    jars: dict[str, str] = {}
    if master:
        builder = builder.master(master)
        jars = spark_jars_conf()
    for key, value in {**BASE_CONF, **jars, **(conf or {})}.items():
        builder = builder.config(key, value)
    cache_jvm_function_lookups()
    return builder.getOrCreate()


def cache_jvm_function_lookups() -> None:
    """Resolve each ``org.apache.spark.sql.functions`` method once per JVM gateway.

    PySpark looks a function up through two reflection round trips to the JVM on every
    ``F.<name>(...)`` call, then calls it: three round trips where one does. The stream builds
    its scoring plan every micro-batch (~2,700 JVM calls, ~750 of them these lookups)."""
    from pyspark.sql.functions import builtin

    if getattr(builtin._get_jvm_function, "_payments_cached", False):
        return
    lookup = builtin._get_jvm_function
    found: dict = {}

    def cached_lookup(name: str, sc):
        key = (id(sc._jvm), name)
        function = found.get(key)
        if function is None:
            function = found[key] = lookup(name, sc)
        return function

    cached_lookup._payments_cached = True
    builtin._get_jvm_function = cached_lookup
