"""EMR on EKS entrypoint of the quality gate (aws profile): verify one staged version with Spark.

    quality_gate.py --table T --location L --result-uri U
                    [--contracts-dir D] [--reference TABLE=LOCATION ...]

Runs ``spark_apps.quality.verify_staged_version(engine="spark")``, writes the
:class:`~spark_apps.quality.GateResult` JSON to ``U`` (local path or ``s3://``; the
orchestrator passes ``<location>/_quality_result/<try's token>.json``), prints the
check summary to the driver log and exits 1 when the contract failed (0 when it passed,
2 when the gate was called wrongly), always after writing the result JSON.
The contracts are read from ``--contracts-dir`` (the profile's ``quality.contracts_dir``,
for example ``s3://<artifacts>/include/contracts``), else ``$PAYMENTS_CONTRACTS_DIR``,
else ``$PAYMENTS_PROJECT_ROOT/include/contracts`` (the Spark image copies them to
``/opt/payments``), else the repository's ``include/contracts``.

The job never writes the control file ``_quality.json`` (a ``--result-uri`` of that name is
refused; on AWS every job role is denied it): the orchestrator checks this job's result
and writes ``_quality.json`` itself, so a job cannot vouch for its own output.
"""

from __future__ import annotations

import argparse
import sys

from payments_contract import QUALITY_RESULT_FILE

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The control file the publisher reads; only the orchestrator writes it (plugins/payments_platform/publishing.py).
CONTROL_FILE = QUALITY_RESULT_FILE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Verify a staged version with its Soda data contract (Spark).")
    parser.add_argument("--table", required=True)
    parser.add_argument("--location", required=True, help="<index_uri>/<table>/dt=<date>/version=<version>")
    parser.add_argument("--result-uri", required=True, help="where to write the GateResult JSON")
    parser.add_argument("--contracts-dir", default=None)
    parser.add_argument(
        "--reference", action="append", default=[], metavar="TABLE=LOCATION", help="another dataset the contract reads"
    )
    args = parser.parse_args(argv)
    if args.result_uri.rstrip("/").rsplit("/", 1)[-1] == CONTROL_FILE:
        parser.error(f"--result-uri must not be {CONTROL_FILE}: only the orchestrator writes the control file")
    bad = [item for item in args.reference if "=" not in item]
    if bad:
        parser.error(f"--reference needs TABLE=LOCATION, got {bad}")
    args.references = dict(item.split("=", 1) for item in args.reference)
    return args


def main(argv: list[str] | None = None, spark=None) -> int:
    """Run the gate; ``spark`` defaults to a session built with the platform settings."""
    from spark_apps.lake import write_text
    from spark_apps.quality import GateError, GateResult, verify_staged_version

    args = parse_args(argv)
    owns_session = spark is None
    if owns_session:
        from spark_apps.session import build_session

        spark = build_session(f"quality-gate-{args.table}")
    try:
        result = verify_staged_version(
            args.table, args.location, engine="spark", spark=spark, references=args.references, contracts_dir=args.contracts_dir
        )
    except GateError as exc:
        # Still leave a (failed) result, so the Airflow side reports why instead of a missing file.
        failed = GateResult.failure(args.table, args.location, "spark", "quality gate could run", str(exc))
        write_text(args.result_uri, failed.to_json() + "\n")
        print(f"quality gate not run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if owns_session:
            spark.stop()
    write_text(args.result_uri, result.to_json() + "\n")
    print(result.log)
    print(result.summary())
    return EXIT_PASSED if result.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
