"""airflow_settings.yaml: Astro-CLI schema, clear errors, idempotent loading into Airflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.airflow_settings import AirflowSettingsError, load_settings, main, parse_settings

PROJECT_SETTINGS = Path(__file__).resolve().parents[2] / "airflow_settings.yaml"


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


def test_apply_loads_then_is_a_no_op(tmp_path, monkeypatch, capsys):
    """Against a throwaway SQLite Airflow DB: values land, and a second apply changes nothing."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    settings_file = tmp_path / "airflow_settings.yaml"
    settings_file.write_text(
        "airflow:\n"
        "  connections:\n    - {conn_id: kafka_test, conn_type: kafka, conn_extra: {bootstrap.servers: '127.0.0.1:1'}}\n"
        "  pools:\n    - {pool_name: test_pool, pool_slot: 3, pool_description: d}\n"
        "  variables:\n    - {variable_name: test_var, variable_value: '42'}\n"
    )
    assert main(["apply", str(settings_file)]) == 0
    with create_session() as session:
        connection = session.query(Connection).filter(Connection.conn_id == "kafka_test").one()
        assert json.loads(connection.extra) == {"bootstrap.servers": "127.0.0.1:1"}
        assert session.query(Pool).filter(Pool.pool == "test_pool").one().slots == 3
    assert Variable.get("test_var") == "42"
    capsys.readouterr()
    assert main(["apply", str(settings_file)]) == 0
    assert "already loaded" in capsys.readouterr().out
