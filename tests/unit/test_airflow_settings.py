"""airflow_settings.yaml: Astro-CLI schema, clear errors, converted to the JSON files Airflow's
own `airflow connections|variables|pools import` read, and imported by them into an Airflow home
of the test's own (scripts/import_settings.sh, which scripts/setup.sh runs)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devtools.airflow_settings import AirflowSettingsError, load_settings, main, parse_settings

ROOT = Path(__file__).resolve().parents[2]
PROJECT_SETTINGS = ROOT / "airflow_settings.yaml"


def test_project_settings_are_valid():
    settings = load_settings(PROJECT_SETTINGS)
    assert {c["conn_id"] for c in settings.connections} >= {"aws_default", "kafka_payments"}
    assert {p["pool_name"] for p in settings.pools} >= {"spark_jobs", "quality_gate"}
    assert {v["variable_name"] for v in settings.variables} >= {"payments_stream_restart_budget"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("connections: []", "top level must be a single 'airflow' mapping"),
        ("airflow:\n  secrets: []", r"airflow\.secrets: unknown section"),
        ("airflow:\n  connections:\n    - conn_type: aws", r"airflow\.connections\[0\]: missing required key 'conn_id'"),
        ("airflow:\n  connections:\n    - conn_id: a", r"airflow\.connections\[0\]: missing required key 'conn_type'"),
        (
            "airflow:\n  connections:\n    - {conn_id: a, conn_type: http, conn_port: http}",
            r"connections\[0\]\.conn_port: must be an integer port",
        ),
        (
            "airflow:\n  connections:\n    - {conn_id: a, conn_type: http, conn_hots: x}",
            r"connections\[0\]\.conn_hots: unknown key",
        ),
        ("airflow:\n  pools:\n    - {pool_name: p, pool_slot: 0}", r"pools\[0\]\.pool_slot: must be a positive integer"),
        ("airflow:\n  variables:\n    - {variable_name: v}", r"variables\[0\]: missing required key 'variable_value'"),
        (
            "airflow:\n  pools:\n    - {pool_name: p, pool_slot: 1}\n    - {pool_name: p, pool_slot: 2}",
            r"pools\[1\]: duplicate pool_name 'p'",
        ),
        ("airflow: [", "not valid YAML"),
    ],
)
def test_malformed_settings_name_the_problem(text, message):
    with pytest.raises(AirflowSettingsError, match=message):
        parse_settings(text, "airflow_settings.yaml")


def test_check_command_reports_the_error(tmp_path, capsys):
    bad = tmp_path / "airflow_settings.yaml"
    bad.write_text("airflow:\n  pools:\n    - {pool_name: p}\n")
    assert main(["check", str(bad)]) == 2
    assert "pools[0].pool_slot: must be a positive integer" in capsys.readouterr().err


SETTINGS = """\
airflow:
  connections:
    - {conn_id: kafka_test, conn_type: kafka, conn_extra: {bootstrap.servers: '127.0.0.1:1'}, conn_description: broker}
    - {conn_id: http_test, conn_type: http, conn_host: example.org, conn_port: 8443, conn_login: me, conn_password: pw,
       conn_schema: https}
    - {conn_id: uri_test, conn_uri: 'postgresql://user:secret@db.internal:5432/payments'}
  pools:
    - {pool_name: test_pool, pool_slot: 3, pool_description: three at once}
    - {pool_name: bare_pool, pool_slot: 1}
  variables:
    - {variable_name: test_var, variable_value: '42', variable_description: the answer}
    - {variable_name: plain_var, variable_value: hello}
"""


def test_convert_writes_the_files_airflows_import_commands_read(tmp_path):
    settings_file = tmp_path / "airflow_settings.yaml"
    settings_file.write_text(SETTINGS)
    assert main(["convert", str(settings_file), str(tmp_path / "out")]) == 0
    documents = {
        name: json.loads((tmp_path / "out" / name).read_text()) for name in ("connections.json", "variables.json", "pools.json")
    }
    assert documents["connections.json"] == {
        "kafka_test": {"conn_type": "kafka", "extra": '{"bootstrap.servers": "127.0.0.1:1"}', "description": "broker"},
        "http_test": {
            "conn_type": "http",
            "host": "example.org",
            "port": 8443,
            "login": "me",
            "password": "pw",
            "schema": "https",
        },
        "uri_test": "postgresql://user:secret@db.internal:5432/payments",
    }
    assert documents["variables.json"] == {
        "test_var": {"value": "42", "description": "the answer"},
        "plain_var": {"value": "hello", "description": None},
    }
    assert documents["pools.json"] == {
        "test_pool": {"slots": 3, "description": "three at once", "include_deferred": False},
        "bare_pool": {"slots": 1, "description": "", "include_deferred": False},
    }


def test_convert_refuses_an_invalid_file_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "airflow_settings.yaml"
    bad.write_text("airflow:\n  pools:\n    - {pool_name: p, pool_slot: 0}\n")
    assert main(["convert", str(bad), str(tmp_path / "out")]) == 2
    assert "pool_slot: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """A fresh Airflow home and SQLite database of this module's own (never the user's .local/)."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}")
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return home, env


def airflow_json(env: dict[str, str], *args: str):
    result = subprocess.run(["airflow", *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout[result.stdout.index("[") :])


def connection(env: dict[str, str], conn_id: str) -> dict:
    return airflow_json(env, "connections", "get", conn_id)[0]


def import_settings(env: dict[str, str], settings_file: Path) -> str:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "import_settings.sh"), str(settings_file)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_airflow_imports_the_settings_and_reads_them_back(airflow_home, tmp_path):
    home, env = airflow_home
    settings_file = tmp_path / "airflow_settings.yaml"
    settings_file.write_text(SETTINGS)
    assert "importing connections, variables and pools" in import_settings(env, settings_file)

    connections = {conn_id: connection(env, conn_id) for conn_id in ("kafka_test", "http_test", "uri_test")}
    assert connections["kafka_test"]["conn_type"] == "kafka"
    assert connections["kafka_test"]["extra_dejson"] == {"bootstrap.servers": "127.0.0.1:1"}
    assert connections["kafka_test"]["description"] == "broker"
    http = connections["http_test"]
    assert (http["host"], http["port"], http["login"], http["schema"]) == ("example.org", "8443", "me", "https")
    uri = connections["uri_test"]  # Airflow parses the URI (postgresql:// is its postgres type)
    assert (uri["conn_type"], uri["host"], uri["port"], uri["login"], uri["schema"]) == (
        "postgres", "db.internal", "5432", "user", "payments",
    )  # fmt: skip
    variables = {v["key"]: v for v in airflow_json(env, "variables", "list")}
    assert set(variables) >= {"test_var", "plain_var"}
    value = subprocess.run(["airflow", "variables", "get", "test_var"], env=env, capture_output=True, text=True, check=True)
    assert value.stdout.strip().splitlines()[-1] == "42"
    pools = {p["pool"]: p for p in airflow_json(env, "pools", "list")}
    assert (pools["test_pool"]["slots"], pools["test_pool"]["description"]) == ("3", "three at once")
    assert pools["bare_pool"]["slots"] == "1"

    # A re-run with the same file is skipped; a changed value is imported over the old one.
    assert "already imported" in import_settings(env, settings_file)
    settings_file.write_text(SETTINGS.replace("pool_slot: 3", "pool_slot: 5").replace("'127.0.0.1:1'", "'127.0.0.1:2'"))
    assert "importing" in import_settings(env, settings_file)
    assert {p["pool"]: p["slots"] for p in airflow_json(env, "pools", "list")}["test_pool"] == "5"
    kafka = connection(env, "kafka_test")
    assert kafka["extra_dejson"] == {"bootstrap.servers": "127.0.0.1:2"}


def test_the_project_settings_import_as_written(airflow_home):
    home, env = airflow_home
    import_settings(env, PROJECT_SETTINGS)
    settings = load_settings(PROJECT_SETTINGS)
    for item in settings.connections:
        imported = connection(env, item["conn_id"])
        assert (imported["conn_type"], imported["extra_dejson"]) == (item["conn_type"], item.get("conn_extra", {}))
    pools = {p["pool"]: p for p in airflow_json(env, "pools", "list")}
    assert {p["pool_name"]: str(p["pool_slot"]) for p in settings.pools}.items() <= {
        k: v["slots"] for k, v in pools.items()
    }.items()
    for item in settings.variables:
        got = subprocess.run(
            ["airflow", "variables", "get", item["variable_name"]], env=env, capture_output=True, text=True, check=True
        )
        assert got.stdout.strip().splitlines()[-1] == item["variable_value"]


def test_nothing_writes_to_the_airflow_database_itself():
    """The converter only writes files: no Airflow model or session is used."""
    source = (ROOT / "devtools" / "airflow_settings.py").read_text()
    assert "airflow.models" not in source and "create_session" not in source
