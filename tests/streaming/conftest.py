"""Fixtures for the streaming tests: one embedded Kafka-protocol broker per pytest process."""

from __future__ import annotations

import itertools
import re

import pytest

_topic_counter = itertools.count()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A real Tansu broker on a free loopback port (DESIGN decision 8), stopped at session end."""
    from spark_apps.kafka.broker import EmbeddedBroker

    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("kafka") / "broker.log") as broker:
        yield broker


@pytest.fixture
def kafka_topics(kafka_broker, request):
    """Fresh topics for one test (the broker is shared): transactions, signals, alerts, dead letter."""
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60] + f"-{next(_topic_counter)}"
    topics = {
        "transactions": f"{prefix}.transactions",
        "fraud_signals": f"{prefix}.fraud-signals",
        "fraud_alerts": f"{prefix}.fraud-alerts",
        "dead_letter": f"{prefix}.dead-letter",
    }
    kafka_broker.create_topics(topics.values(), partitions=2)
    return topics
