"""The main job (scripts/local_run.py): preflight messages, Ctrl-C cleanup, and one small
full run checked against the generator's ground truth."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local_run.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def private_airflow_home(local_dir: Path) -> dict[str, str]:
    """A copy of the project's Airflow database (connections, variables, pools), so this
    test's DAG runs never collide with another process running the same DAG and date."""
    home = local_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(ROOT / ".local" / "airflow" / "airflow.db") as source, sqlite3.connect(home / "airflow.db") as copy:
        source.backup(copy)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def job_env(local_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAYMENTS_")}
    env.update(private_airflow_home(local_dir))
    env.update(
        PAYMENTS_PROFILE="local",
        PAYMENTS_LOCAL_DIR=str(local_dir),
        PAYMENTS_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        PAYMENTS_PAN_TOKEN_KEY="test-only-pan-token-key-0123456789",
        **extra,
    )
    return env


def test_a_busy_broker_port_stops_the_run_before_anything_starts_with_what_to_do(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(SCRIPT)], env=job_env(tmp_path, port), capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is busy" in result.stdout
    assert "PAYMENTS_KAFKA_BOOTSTRAP=127.0.0.1:<free port>" in result.stdout
    assert not (tmp_path / "lake").exists(), "nothing generated"


def test_missing_java_is_reported_with_how_to_install_it(tmp_path):
    env = job_env(tmp_path, free_port(), PATH=str(tmp_path / "empty-bin"))
    env.pop("JAVA_HOME", None)
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Java was not found" in result.stdout and "JAVA_HOME" in result.stdout
    assert not (tmp_path / "lake").exists()


@pytest.mark.slow
def test_ctrl_c_while_the_stream_app_starts_stops_the_app_and_the_broker(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--transactions", "1000"],
        env=job_env(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "start the streaming app" in line:
            break
    assert not port_is_free(port), "the broker is up"
    time.sleep(5)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    output = "".join(lines) + rest
    assert process.returncode == 130, output
    assert "stopping the Kafka broker" in output
    assert port_is_free(port), "the broker stopped"
    pid_file = tmp_path / "stream" / "stream_index.pid"
    if pid_file.exists():  # the supervisor got as far as starting the job: it must be gone
        pid = int(pid_file.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
