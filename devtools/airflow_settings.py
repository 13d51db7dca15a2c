"""Convert ``airflow_settings.yaml`` (the Astro CLI schema, the one file a user edits) into the
files Airflow's own CLI imports; Airflow writes them into its database.

    python -m devtools.airflow_settings check airflow_settings.yaml
    python -m devtools.airflow_settings convert airflow_settings.yaml OUT_DIR

``check`` validates the file only. ``convert`` validates, then writes into OUT_DIR

* ``connections.json`` for ``airflow connections import --overwrite``: ``{conn_id: {"conn_type",
  "host", "schema", "login", "password", "port", "extra", "description"}}`` (the keys are
  ``Connection``'s constructor arguments, which ``airflow.secrets.local_filesystem`` accepts; a
  connection given only as ``conn_uri`` is its URI string);
* ``variables.json`` for ``airflow variables import --action-on-existing-key overwrite``:
  ``{name: {"value", "description"}}``;
* ``pools.json`` for ``airflow pools import``: ``{name: {"slots", "description",
  "include_deferred"}}`` (``description`` is required by the command).

scripts/setup.sh runs the three imports when these files changed. Nothing here writes to the
Airflow database.
"""

from __future__ import annotations

import argparse
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

    return AirflowSettings(**{section: _parse_section(body, section, source) for section in SECTIONS})


def _parse_section(body: dict[str, Any], section: str, source: str) -> list[dict[str, Any]]:
    key_field, allowed = SECTIONS[section]
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
    return items


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


CONNECTION_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
    "conn_description": "description",
}
IMPORT_FILES = ("connections.json", "variables.json", "pools.json")


def connection_entry(item: dict[str, Any]) -> str | dict[str, Any]:
    """One connection as ``airflow connections import`` reads it from JSON."""
    fields = {target: item[source] for source, target in CONNECTION_FIELDS.items() if item.get(source) is not None}
    if item.get("conn_uri"):
        if not fields and item.get("conn_extra") is None:
            return item["conn_uri"]
        fields["uri"] = item["conn_uri"]
    extra = item.get("conn_extra")
    if extra is not None:
        fields["extra"] = json.dumps(extra, sort_keys=True) if isinstance(extra, dict) else extra
    return fields


def import_documents(settings: AirflowSettings) -> dict[str, dict[str, Any]]:
    """File name -> JSON document for the three ``airflow ... import`` commands."""
    return {
        "connections.json": {item["conn_id"]: connection_entry(item) for item in settings.connections},
        "variables.json": {
            item["variable_name"]: {"value": item["variable_value"], "description": item.get("variable_description")}
            for item in settings.variables
        },
        "pools.json": {
            item["pool_name"]: {
                "slots": item["pool_slot"],
                "description": item.get("pool_description") or "",
                "include_deferred": False,
            }
            for item in settings.pools
        },
    }


def write_import_files(settings: AirflowSettings, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the import files (only when their content changed, so their times say when)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, document in import_documents(settings).items():
        path = out / name
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written[name] = path
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "convert"])
    parser.add_argument("path")
    parser.add_argument("out_dir", nargs="?", help="convert: folder of the JSON files to import")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.path)
    except AirflowSettingsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(f"{args.path}: ok")
        return 0
    if not args.out_dir:
        parser.error("convert needs OUT_DIR")
    for path in write_import_files(settings, args.out_dir).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
