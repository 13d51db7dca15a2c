"""The documented second command, ``bash scripts/run_local.sh ui``: the Airflow UI and API
come up with the project's DAGs, connections, variables and pools, and Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.main_job.test_main_job import ROOT, free_port

PROJECT_DAGS = {"payments_daily_index", "payments_stream_supervisor", "payments_reprocess"}


def get_json(url: str, token: str | None = None, data: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until_healthy(base: str, process: subprocess.Popen, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    health: dict = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, "airflow standalone exited early"
        try:
            health = get_json(f"{base}/api/v2/monitor/health")
            if health["metadatabase"]["status"] == "healthy" and health["scheduler"]["status"] == "healthy":
                return health
        except (urllib.error.URLError, ConnectionError, KeyError, TimeoutError):
            pass
        time.sleep(3)
    raise AssertionError(f"the UI was not healthy within {timeout_s} s: {health}")


def admin_token(base: str, timeout_s: float = 60) -> str:
    """The simple auth manager's generated admin password (written once the API server
    started) exchanged for an API token."""
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"  # the tests' home
    deadline = time.monotonic() + timeout_s
    while not passwords.exists() and time.monotonic() < deadline:
        time.sleep(1)
    password = json.loads(passwords.read_text())["admin"]
    return get_json(f"{base}/auth/token", data={"username": "admin", "password": password})["access_token"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_ui_command_serves_the_project_dags_connections_variables_and_pools_and_stops_on_ctrl_c():
    port = free_port()
    env = {**os.environ, "AIRFLOW_PORT": str(port)}
    process = subprocess.Popen(
        ["bash", "scripts/run_local.sh", "ui"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process, timeout_s=360)
        token = admin_token(base)
        dags = {dag["dag_id"] for dag in get_json(f"{base}/api/v2/dags?limit=100", token)["dags"]}
        deadline = time.monotonic() + 120  # the DAG processor parses the folder after start
        while not dags >= PROJECT_DAGS and time.monotonic() < deadline:
            time.sleep(3)
            dags = {dag["dag_id"] for dag in get_json(f"{base}/api/v2/dags?limit=100", token)["dags"]}
        assert dags >= PROJECT_DAGS

        settings = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())["airflow"]
        connections = {c["connection_id"] for c in get_json(f"{base}/api/v2/connections", token)["connections"]}
        assert {c["conn_id"] for c in settings["connections"]} <= connections
        variables = {v["key"]: v["value"] for v in get_json(f"{base}/api/v2/variables", token)["variables"]}
        assert {v["variable_name"]: v["variable_value"] for v in settings["variables"]}.items() <= variables.items()
        pools = {p["name"]: p["slots"] for p in get_json(f"{base}/api/v2/pools", token)["pools"]}
        assert {p["pool_name"]: p["pool_slot"] for p in settings["pools"]}.items() <= pools.items()
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    # communicate() returned: every process that held the command's output has exited.
    assert f"Airflow UI on http://localhost:{port}" in output
    # Connect, not bind: the closed server's connections may sit in TIME_WAIT on the port.
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
