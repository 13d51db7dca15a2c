"""The stream's lake files in the ``aws`` profile (S3, here moto's S3 server): the checkpoint's
rule-bucket record, the sent markers, the metrics and the index commit, with the exact requests
each sends. Every request is a round trip inside a micro-batch, most of them in sequence."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from spark_apps import lake
from spark_apps.kafka.sink import MARKERS_KEPT, BatchKafkaSink
from spark_apps.streaming.metrics import MetricsListener, read_latest
from spark_apps.streaming.writer import commit_index_table
from tests.streaming.helpers import consume_all


def test_a_small_lake_file_is_one_put(s3_lake):
    bucket, served = s3_lake
    lake.write_text(f"{bucket}/checkpoints/stream_index/_sent/alerts/000000000007", "12")
    # Before: a multipart upload (3 requests) after 4 requests creating "directory" objects.
    assert served == [f"PUT /{bucket[5:]}/checkpoints/stream_index/_sent/alerts/000000000007 200"]
    served.clear()
    assert lake.read_text(f"{bucket}/checkpoints/stream_index/_sent/alerts/000000000007") == "12"
    assert lake.read_text(f"s3a://{bucket[5:]}/checkpoints/stream_index/_sent/alerts/000000000007") == "12"


def test_the_checkpoint_plan_record_on_s3(s3_lake):
    from spark_apps.jobs.stream_index import PLAN_FILE, PLAN_VERSION, CheckpointError, StreamJobOptions, check_checkpoint_plan

    bucket, _served = s3_lake

    def options(checkpoint: str = "cp"):
        uris = (f"{bucket}/{name}" for name in ("raw", "index", checkpoint, "metrics"))
        return StreamJobOptions("b:9098", "t", "s", "a", "d", *uris)

    check_checkpoint_plan(options())
    assert json.loads(lake.read_text(f"{bucket}/cp/stream_index/{PLAN_FILE}")) == {"plan": PLAN_VERSION}
    check_checkpoint_plan(options())
    # A checkpoint with batches (S3 has no folders: objects under offsets/) but no record: the earlier plan.
    lake.write_text(f"{bucket}/old-cp/stream_index/offsets/0", "v1")
    with pytest.raises(CheckpointError, match="'v1'"):
        check_checkpoint_plan(options("old-cp"))


@pytest.mark.kafka
def test_sent_markers_on_s3_cost_two_requests_per_topic_and_batch(s3_lake, kafka_broker, kafka_topics):
    bucket, served = s3_lake
    topic = kafka_topics["fraud_alerts"]
    sink = BatchKafkaSink(kafka_broker.bootstrap, f"{bucket}/cp/stream_index/_sent")
    marker = f"/{bucket[5:]}/cp/stream_index/_sent/{topic}/000000000003"
    assert sink.send(topic, 3, [("t-1", '{"n": 1}'), ("t-2", '{"n": 2}')]) == 2
    assert served == [f"HEAD {marker} 404", f"PUT {marker} 200"]  # not sent yet; then the marker
    served.clear()
    assert sink.send(topic, 3, [("t-1", '{"n": 1}'), ("t-2", '{"n": 2}')]) == 0  # the replay after a crash
    assert served == [f"HEAD {marker} 200", f"GET {marker} 206"]
    assert sorted(m["key"] for m in consume_all(kafka_broker.bootstrap, topic)) == ["t-1", "t-2"]
    served.clear()
    # A local checkpoint forgets batch 3's marker here; on S3 the bucket's lifecycle rule
    # expires markers (a delete would be HEAD + DELETE + PUT of the "folder" object).
    assert sink.send(topic, 3 + MARKERS_KEPT, []) == 0
    later = marker.replace("000000000003", f"{3 + MARKERS_KEPT:012d}")
    assert served == [f"HEAD {later} 404", f"PUT {later} 200"]


def test_index_commit_on_s3_puts_each_partition_file_once_and_a_replay_replaces_it(s3_lake):
    bucket, served = s3_lake
    index_uri = f"{bucket}/indexes"

    def rows(ids: list[str]) -> pa.Table:
        hours = [f"{10 + int(i[1:]) % 2:02d}" for i in ids]
        return pa.table({"transaction_id": ids, "dt": ["2026-11-21"] * len(ids), "hour": hours})

    assert commit_index_table(rows(["t0", "t1", "t2"]), index_uri, 5) == 2
    table = f"/{bucket[5:]}/indexes/stream_index"
    # Before: ~30 requests (staging folder, multipart uploads, copy + delete, folder objects).
    assert served == [
        f"PUT {table}/dt=2026-11-21/hour=10/part-b000000000005-00000.parquet 200",
        f"PUT {table}/dt=2026-11-21/hour=11/part-b000000000005-00000.parquet 200",
    ]
    commit_index_table(rows(["t0", "t1", "t2"]), index_uri, 5)  # the replay writes the same keys
    commit_index_table(rows(["t4"]), index_uri, 6)
    written = ds.dataset(f"{bucket[5:]}/indexes/stream_index", filesystem=lake._filesystem(index_uri)[0], format="parquet")
    assert sorted(written.to_table().column("transaction_id").to_pylist()) == ["t0", "t1", "t2", "t4"]
    assert sorted(f.rsplit("/", 1)[1] for f in written.files) == [
        "part-b000000000005-00000.parquet",
        "part-b000000000005-00000.parquet",
        "part-b000000000006-00000.parquet",
    ]


def test_metrics_of_a_batch_on_s3_are_two_puts(s3_lake):
    bucket, served = s3_lake
    record = {"batch_id": 4, "committed_at": "2026-11-21T10:00:00.000000Z", "input_rows": 3}
    MetricsListener(f"{bucket}/metrics", "stream_index").write(record)
    location = f"/{bucket[5:]}/metrics/stream/stream_index"
    assert served == [
        f"PUT {location}/batches/dt=2026-11-21/hour=10/batch-000000000004.json 200",
        f"PUT {location}/latest.json 200",
    ]
    assert read_latest(f"{bucket}/metrics", "stream_index") == record
