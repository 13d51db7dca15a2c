"""constraints-mwaa.txt (what MWAA installs requirements.txt with) = Airflow's constraints for the
pinned Airflow and MWAA's Python, with only the project's own pins overriding it.

    python scripts/mwaa_constraints.py derive --airflow-constraints constraints-airflow.txt \
        --requirements requirements.txt --pip-report report.json > constraints-mwaa.txt
    python scripts/mwaa_constraints.py local-only        # the names never allowed on MWAA

The output has three sections, each sorted:

1. every pin of the Airflow constraints file, unchanged, except the packages the project pins
   itself (section 2) and the local-only packages (pyspark, moto, pytest*, ruff, checkov, soda-*,
   duckdb, ...: Airflow's file pins its whole development set, MWAA needs none of them);
2. the pins of requirements.txt (the providers and clients the project pins), overriding (1);
3. what (2) needs that (1) lacks, at the versions pip resolved for MWAA's Python (``--pip-report``
   of a cross-resolve of requirements.txt + apache-airflow against sections 1 and 2).

scripts/lock.sh runs it; tests/unit/test_packaging.py re-derives the file from the same inputs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)(?:\[[^\]]*\])?==([^\s;#]+)")
SECTION_AIRFLOW = "# --- {source}: every pin but the overridden and local-only ones, unchanged"
SECTION_PROJECT = "# --- requirements.txt: the project's pins, overriding the file above"
SECTION_ADDED = "# --- what those pins need that the file above lacks (pip's resolve for MWAA's Python)"
# Never on MWAA, whatever a constraints file pins: Spark (EMR provides it), the test and lint
# tools, the local profile's engines (DuckDB for its catalog and quality gate, Soda's local
# sources). Other local pins (rich, pandas, pyarrow, flask, ...) are also Airflow's or its
# providers' dependencies, so Airflow's file keeps its pins of them.
LOCAL_ONLY_NAMES = {"pyspark", "py4j", "moto", "ruff", "checkov", "duckdb", "sqlglot", "python-hcl2", "freezegun"}
LOCAL_ONLY_PREFIXES = ("pytest", "soda-")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, tuple[str, str]]:
    """canonical name -> (name as written, version) of every ``name==version`` line."""
    found = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonical(match.group(1))] = (match.group(1), match.group(2))
    return found


def local_only(root: Path = ROOT) -> set[str]:
    """Canonical names that must never reach MWAA (and the prefixes of is_local_only)."""
    return LOCAL_ONLY_NAMES - set(pins((root / "requirements.txt").read_text()))


def is_local_only(name: str, names: set[str]) -> bool:
    name = canonical(name)
    return name in names or name.startswith(LOCAL_ONLY_PREFIXES)


def _lines(entries: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{name}=={version}" for name, version in sorted(entries, key=lambda entry: canonical(entry[0]))]


def derive(
    airflow_constraints: str,
    requirements: str,
    added: Mapping[str, str],
    excluded: set[str],
    source: str = "constraints-airflow.txt",
) -> str:
    """The constraints-mwaa.txt body (the three sections) from its inputs; ``added`` is name -> version."""
    overrides = pins(requirements)
    base = {
        key: value
        for key, value in pins(airflow_constraints).items()
        if key not in overrides and not is_local_only(key, excluded)
    }
    extra = {canonical(name): (name, version) for name, version in added.items()}
    clash = sorted((set(extra) & (set(base) | set(overrides))) | {k for k in extra if is_local_only(k, excluded)})
    if clash:
        raise ValueError(f"added packages already pinned above or local-only: {', '.join(clash)}")
    sections = [
        [SECTION_AIRFLOW.format(source=source), *_lines(base.values())],
        [SECTION_PROJECT, *_lines(overrides.values())],
        [SECTION_ADDED, *_lines(extra.values())],
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


def added_from_report(report: Mapping, airflow_constraints: str, requirements: str) -> dict[str, str]:
    """Packages of pip's install report that neither the Airflow file nor requirements.txt pins."""
    known = set(pins(airflow_constraints)) | set(pins(requirements))
    return {
        item["metadata"]["name"]: item["metadata"]["version"]
        for item in report["install"]
        if canonical(item["metadata"]["name"]) not in known
    }


def sections(text: str) -> dict[str, dict[str, tuple[str, str]]]:
    """The three sections of a derived file: "airflow", "project", "added" -> pins."""
    parts: dict[str, list[str]] = {"airflow": [], "project": [], "added": []}
    current = None
    for line in text.splitlines():
        if line.startswith("# --- "):
            current = "airflow" if "every pin but" in line else "project" if "requirements.txt" in line else "added"
        elif current:
            parts[current].append(line)
    return {name: pins("\n".join(lines)) for name, lines in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    derive_cmd = sub.add_parser("derive")
    derive_cmd.add_argument("--airflow-constraints", type=Path, required=True)
    derive_cmd.add_argument("--requirements", type=Path, required=True)
    derive_cmd.add_argument("--pip-report", type=Path, required=True)
    derive_cmd.add_argument("--no-additions", action="store_true", help="sections 1 and 2 only (the resolve's input)")
    derive_cmd.add_argument(
        "--hold",
        type=Path,
        help="with --no-additions: also pin what this lock pins and sections 1-2 do not (the resolve's input)",
    )
    sub.add_parser("local-only")
    args = parser.parse_args(argv)
    if args.command == "local-only":
        print("\n".join(sorted(local_only())))
        return 0
    airflow_constraints = args.airflow_constraints.read_text()
    requirements = args.requirements.read_text()
    added = (
        {} if args.no_additions else added_from_report(json.loads(args.pip_report.read_text()), airflow_constraints, requirements)
    )
    text = derive(airflow_constraints, requirements, added, local_only(), args.airflow_constraints.name)
    if args.hold:  # the packages the resolve may add stay at the versions the tests run with
        pinned, excluded = pins(text), local_only()
        held = [v for k, v in pins(args.hold.read_text()).items() if k not in pinned and not is_local_only(k, excluded)]
        text += "\n".join(_lines(held)) + "\n"
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
