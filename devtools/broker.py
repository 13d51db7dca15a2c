"""The local profile's Kafka broker: Apache Kafka itself, single node, KRaft combined mode.

DESIGN decision 8: the broker is the real thing. It runs ``kafka.Kafka`` from the jars
that ``scripts/setup.sh`` resolves from the JVM manifest (``jvm/broker``: the Kafka
version MSK runs and Spark's connector is built with) into ``.local/jvm/broker``, as
one process that is both broker and controller, on loopback ports. Three ways in:

* a context manager: ``with EmbeddedBroker(topics=...) as broker: broker.bootstrap``
  (a temporary data folder, deleted on exit, unless ``data_dir`` is given);
* the pytest fixture ``kafka_broker`` (tests/streaming/conftest.py);
* the CLI used by the local main job and the Airflow stream supervisor::

      python -m devtools.broker start [--port 19092] [--partitions 2]
      python -m devtools.broker status      # exit 0 and JSON if running, else 1
      python -m devtools.broker stop

  ``start`` detaches the broker and records ``{pid, port, bootstrap, ...}`` in
  ``.local/kafka/broker.json``; its data lives in ``.local/kafka/data``, so topics,
  records and committed offsets survive a stop and a start. The default port is the
  one in the local profile's ``kafka.bootstrap_servers``.

The broker keeps Kafka's semantics whole (true high watermarks, idempotent producers,
transactions with aborts honoured, retention): the project relies on nothing else.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from spark_apps import jvm

DEFAULT_PARTITIONS = 2
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# A single-node broker for 1k-10k msg/s on a 2-core machine: a small heap and few threads.
DEFAULT_HEAP = "512m"
KAFKA_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
LOCAL_DIR = Path(os.environ.get("PAYMENTS_LOCAL_DIR") or jvm.PROJECT_ROOT / ".local")
STATE_FILE = LOCAL_DIR / "kafka" / "broker.json"
DATA_DIR = LOCAL_DIR / "kafka" / "data"


class BrokerError(RuntimeError):
    """The broker could not be started, reached or stopped."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def profile_topics() -> dict[str, int]:
    """The four platform topics of the selected profile, with the profile's partition count."""
    from payments_platform.profiles import get_profile

    kafka = get_profile().kafka
    names = (kafka.transactions_topic, kafka.fraud_signals_topic, kafka.fraud_alerts_topic, kafka.dead_letter_topic)
    return dict.fromkeys(names, kafka.topics.partitions)


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
            future.result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"creating topic {name}: {exc}") from exc


def end_offsets(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """The topic's end offset (high watermark) per partition, now."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "payments-end-offsets", "enable.auto.commit": False})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1] for p in partitions}
    finally:
        consumer.close()


def wait_until_ready(bootstrap: str, timeout_s: float = READY_TIMEOUT_S, process: subprocess.Popen | None = None) -> None:
    """Return once the broker is registered and answers metadata requests; raise BrokerError on
    timeout or early exit."""
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode} before becoming ready")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            if AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2).brokers:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise BrokerError(f"broker at {bootstrap} not ready after {timeout_s:.0f}s")


def server_properties(port: int, controller_port: int, log_dir: Path, partitions: int) -> str:
    """KRaft combined mode (broker + controller, node 1) on loopback; replication 1 everywhere."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        # Topics are created on purpose (the profile's, or a test's), never by a typo.
        "auto.create.topics.enable": "false",
        # No deletion by time: retention goes by record timestamps, and generated days and test
        # traffic carry the (past) produce times of the day they replay; a 7-day default would
        # delete a replayed day at once. The profile's retention applies on MSK.
        "log.retention.hours": "-1",
        "log.retention.bytes": "-1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "2",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "2",
        "group.initial.rebalance.delay.ms": "0",
        # Two cores: fewer threads than Kafka's server defaults (3 network, 8 I/O).
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


LOG4J_PROPERTIES = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
log4j.logger.kafka.Kafka$=INFO
"""


def java_command(main_class: str, *args: str, heap: str = DEFAULT_HEAP, config_dir: Path) -> list[str]:
    java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else "java"
    return [
        java,
        f"-Xms{min(_megabytes(heap), 256)}m",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{config_dir / 'log4j.properties'}",
        "-cp",
        jvm.classpath("broker"),
        main_class,
        *args,
    ]


def _megabytes(heap: str) -> int:
    number, unit = int(heap[:-1]), heap[-1].lower()
    return number * 1024 if unit == "g" else number


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with "-"
    (as Kafka's own Uuid.randomUuid: a leading dash reads as an option on a command line)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (Kafka shuts down cleanly: logs flushed, no recovery at the next start), then
    SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
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
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and KAFKA_MAIN_CLASS in cmdline


class EmbeddedBroker:
    """One Apache Kafka process (KRaft, broker + controller) on loopback ports.

    ``topics`` maps names to partition counts (or lists names, ``partitions`` each).
    ``data_dir``: where the broker keeps its config and logs; formatted on first use and
    reused after, so topics and records survive a restart. None: a temporary folder,
    removed by :meth:`stop`.
    """

    def __init__(
        self,
        topics: Mapping[str, int] | Iterable[str] = (),
        port: int | None = None,
        partitions: int = DEFAULT_PARTITIONS,
        log_path: str | Path | None = None,
        data_dir: str | Path | None = None,
        heap: str = DEFAULT_HEAP,
    ) -> None:
        self.port = port if port else free_loopback_port()  # None or 0: a free port
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.partitions = partitions
        self.topics = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
        self.log_path = Path(log_path) if log_path else None
        self.heap = heap
        self._temporary = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="kafka-"))
        self.process: subprocess.Popen | None = None
        self.started_in_s: float | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def _configure(self) -> Path:
        """Write server.properties (ports may differ per start) and format the log folder once."""
        config_dir = self.data_dir / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        controller_port = self.port + 1 if _port_free(self.port + 1) else free_loopback_port()
        properties = config_dir / "server.properties"
        properties.write_text(server_properties(self.port, controller_port, self.log_dir, self.partitions))
        (config_dir / "log4j.properties").write_text(LOG4J_PROPERTIES)
        if not (self.log_dir / "meta.properties").is_file():
            command = java_command(
                STORAGE_TOOL_CLASS,
                "format",
                f"--cluster-id={_cluster_id()}",
                f"--config={properties}",
                heap="256m",
                config_dir=config_dir,
            )
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BrokerError(f"formatting {self.log_dir} failed: {done.stdout}{done.stderr}")
        return properties

    def start(self, detach: bool = False) -> EmbeddedBroker:
        began = time.monotonic()
        properties = self._configure()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                java_command(KAFKA_MAIN_CLASS, str(properties), heap=self.heap, config_dir=properties.parent),
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
        self.started_in_s = time.monotonic() - began
        return self

    def create_topics(self, topics: Mapping[str, int] | Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
        create_topics(self.bootstrap, topics, partitions)

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.process = None
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

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


def cli_start(port: int | None, partitions: int | None, state_file: Path = STATE_FILE, data_dir: Path = DATA_DIR) -> dict:
    running = read_state(state_file)
    if running:
        return running
    state_file.parent.mkdir(parents=True, exist_ok=True)
    topics = profile_topics()
    if partitions:
        topics = dict.fromkeys(topics, partitions)
    broker = EmbeddedBroker(
        topics=topics,
        port=_profile_port() if port is None else port,
        partitions=max(topics.values()),
        log_path=state_file.with_suffix(".log"),
        data_dir=data_dir,
    )
    broker.start(detach=True)
    state = {
        "pid": broker.process.pid,
        "port": broker.port,
        "bootstrap": broker.bootstrap,
        "topics": broker.topics,
        "data_dir": str(data_dir),
        "started_at": time.time(),
        "started_in_s": round(broker.started_in_s or 0.0, 2),
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
    parser = argparse.ArgumentParser(prog="python -m devtools.broker", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a detached broker (data in .local/kafka/data) and create the profile's topics")
    start.add_argument(
        "--port", type=int, default=None, help="0 picks a free port; default: the port of the profile's kafka.bootstrap_servers"
    )
    start.add_argument("--partitions", type=int, default=None, help="default: the profile's kafka.topics.partitions")
    sub.add_parser("status", help="print the running broker's state; exit 1 if none")
    sub.add_parser("stop", help="stop the broker started by 'start' (its data stays)")
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
