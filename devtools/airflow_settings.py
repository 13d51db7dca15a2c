"""Load ``airflow_settings.yaml`` (the Astro CLI schema) into the local Airflow DB.

    python -m devtools.airflow_settings apply airflow_settings.yaml
    python -m devtools.airflow_settings check airflow_settings.yaml

``check`` validates the file only; ``apply`` validates, then upserts connections,
variables and pools, and records a digest so that an unchanged file is a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONNECTION_KEYS = {
    "conn_id",
    "conn_type",
    "conn_host",
    "conn_schema",
    "conn_login",
    "conn_password",
    "conn_port",
    "conn_extra",
    "conn_uri",
    "conn_description",
}
POOL_KEYS = {"pool_name", "pool_slot", "pool_description"}
VARIABLE_KEYS = {"variable_name", "variable_value", "variable_description"}
SECTIONS = {
    "connections": ("conn_id", CONNECTION_KEYS),
    "pools": ("pool_name", POOL_KEYS),
    "variables": ("variable_name", VARIABLE_KEYS),
}


class AirflowSettingsError(ValueError):
    """The settings file is malformed; the message names the file and the bad key."""


@dataclass(frozen=True)
class AirflowSettings:
    connections: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    variables: list[dict[str, Any]] = field(default_factory=list)


def parse_settings(text: str, source: str = "airflow_settings.yaml") -> AirflowSettings:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AirflowSettingsError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {"airflow"}:
        raise AirflowSettingsError(f"{source}: the top level must be a single 'airflow' mapping")
    body = document["airflow"] or {}
    if not isinstance(body, dict):
        raise AirflowSettingsError(f"{source}: 'airflow' must be a mapping")
    unknown = set(body) - set(SECTIONS)
    if unknown:
        raise AirflowSettingsError(
            f"{source}: airflow.{sorted(unknown)[0]}: unknown section (allowed: {', '.join(sorted(SECTIONS))})"
        )

    parsed: dict[str, list[dict[str, Any]]] = {}
    for section, (key_field, allowed) in SECTIONS.items():
        items = body.get(section) or []
        if not isinstance(items, list):
            raise AirflowSettingsError(f"{source}: airflow.{section} must be a list")
        seen: set[str] = set()
        for index, item in enumerate(items):
            where = f"{source}: airflow.{section}[{index}]"
            if not isinstance(item, dict):
                raise AirflowSettingsError(f"{where} must be a mapping")
            extra = set(item) - allowed
            if extra:
                raise AirflowSettingsError(f"{where}.{sorted(extra)[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
            if not item.get(key_field):
                raise AirflowSettingsError(f"{where}: missing required key '{key_field}'")
            if item[key_field] in seen:
                raise AirflowSettingsError(f"{where}: duplicate {key_field} '{item[key_field]}'")
            seen.add(item[key_field])
            _check_item(section, item, where)
        parsed[section] = items
    return AirflowSettings(**parsed)


def _check_item(section: str, item: dict[str, Any], where: str) -> None:
    if section == "connections":
        if not item.get("conn_type") and not item.get("conn_uri"):
            raise AirflowSettingsError(f"{where}: missing required key 'conn_type' (or 'conn_uri')")
        port = item.get("conn_port")
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise AirflowSettingsError(f"{where}.conn_port: must be an integer port, got {port!r}")
        extra = item.get("conn_extra")
        if extra is not None and not isinstance(extra, (dict, str)):
            raise AirflowSettingsError(f"{where}.conn_extra: must be a mapping or a JSON string")
    elif section == "pools":
        slots = item.get("pool_slot")
        if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
            raise AirflowSettingsError(f"{where}.pool_slot: must be a positive integer, got {slots!r}")
    elif section == "variables" and "variable_value" not in item:
        raise AirflowSettingsError(f"{where}: missing required key 'variable_value'")


def load_settings(path: str | os.PathLike[str]) -> AirflowSettings:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise AirflowSettingsError(f"{path}: cannot read: {exc}") from exc
    return parse_settings(text, source=str(path))


def apply_settings(settings: AirflowSettings) -> dict[str, int]:
    """Upsert everything into the Airflow metadata DB; returns counts per kind."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for item in settings.connections:
            extra = item.get("conn_extra")
            connection = Connection(
                conn_id=item["conn_id"],
                conn_type=item.get("conn_type"),
                host=item.get("conn_host"),
                schema=item.get("conn_schema"),
                login=item.get("conn_login"),
                password=item.get("conn_password"),
                port=item.get("conn_port"),
                extra=json.dumps(extra) if isinstance(extra, dict) else extra,
                description=item.get("conn_description"),
                uri=item.get("conn_uri"),
            )
            session.query(Connection).filter(Connection.conn_id == connection.conn_id).delete()
            session.add(connection)
        for item in settings.pools:
            existing = session.query(Pool).filter(Pool.pool == item["pool_name"]).one_or_none()
            if existing is None:
                session.add(
                    Pool(
                        pool=item["pool_name"],
                        slots=item["pool_slot"],
                        description=item.get("pool_description"),
                        include_deferred=False,
                    )
                )
            else:
                existing.slots = item["pool_slot"]
                existing.description = item.get("pool_description")
    for item in settings.variables:
        Variable.set(item["variable_name"], item["variable_value"], description=item.get("variable_description"))
    return {"connections": len(settings.connections), "pools": len(settings.pools), "variables": len(settings.variables)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["apply", "check"])
    parser.add_argument("path")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.path)
    except AirflowSettingsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(f"{args.path}: ok")
        return 0
    digest = hashlib.sha256(Path(args.path).read_bytes()).hexdigest()
    stamp = Path(os.environ.get("AIRFLOW_HOME", ".")) / ".airflow_settings.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        print("[setup] airflow_settings.yaml already loaded")
        return 0
    counts = apply_settings(settings)
    stamp.write_text(digest)
    print("[setup] loaded airflow_settings.yaml: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
