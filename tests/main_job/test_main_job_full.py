"""The main job at a small size, end to end: summary against the ground truth, every
index published, dashboard written, everything it started stopped."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from plotly.offline import get_plotlyjs

from devtools.local_runner import load_dag, task_order
from payments_platform.pipeline import BUSINESS_INDEXES
from tests.batch.pii_scan import kafka_segment_records, scan_tree
from tests.main_job.test_main_job import ROOT, SCRIPT, free_port, job_env, port_is_free

EVERY_TABLE = {"batch_index", "quarantine", "aggregate_index", "audit_trail", *BUSINESS_INDEXES}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_main_job_at_a_small_size_matches_the_ground_truth_and_publishes_every_index(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--transactions", "1000", "--stream-seconds", "30", "--progress-seconds", "10"],
        env=job_env(tmp_path, port), capture_output=True, text=True, timeout=1500, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "run-summary.json").read_text())

    assert set(summary["published"]) == EVERY_TABLE
    assert all(summary["quality_gate"].values()), summary["quality_gate"]
    assert all(f"dt={summary['date']}/version=" in location for location in summary["published"].values())

    batch = summary["batch"]
    assert batch["indexed"] == batch["expected_indexed"] == 1000
    assert batch["duplicates_removed"] == batch["expected_duplicates"] > 0
    assert batch["quarantined_by_reason"] == batch["expected_quarantined_by_reason"] != {}
    recon = summary["reconciliation"]
    assert recon["breaks_by_type"] == recon["expected_breaks_by_type"] != {}
    assert recon["matched"] == recon["expected_matched"]
    fraud = summary["fraud"]
    assert fraud["rule_flagged"] == fraud["expected_rule_flagged"] > 0
    assert fraud["rules_precision"] == fraud["rules_recall"] == 1.0

    stream = summary["stream"]  # the whole generated day was streamed
    assert stream["sent"]["payments.transactions"] == batch["read"] == batch["expected_read"]
    assert stream["micro_batches"] > 0
    assert stream["indexed_transactions"] == stream["expected_transactions"] == stream["latency"]["rows"]
    assert stream["dead_letters"] == stream["expected_dead_letters"] > sum(batch["expected_quarantined_by_reason"].values())
    assert stream["alerts"] >= stream["alerted_transactions"] > 0
    assert stream["expected_rule_flagged_alerted"] == stream["expected_rule_flagged"] == fraud["expected_rule_flagged"]
    assert stream["latency"]["rows"] > 0 and 0 <= stream["latency"]["p50_ms"] <= stream["latency"]["p99_ms"]
    assert summary["rows_per_index"]["aggregate_index"] >= 1000
    assert_progress_was_reported(result.stdout, stream)

    page = (tmp_path / "dashboard.html").read_text()
    assert page.count('class="chart"') == 5 and page.count("Plotly.newPlot(") == 5
    assert f"file://{tmp_path / 'dashboard.html'}" in result.stdout
    assert port_is_free(port), "the broker was stopped"
    assert "stop the streaming app (payments_stream_supervisor, action=stop): ok" in result.stdout

    # Card data (issue 22): the tests' one scanner over everything the run left, except the raw drops
    # and the input topic, which hold card numbers by design: every index and quarantine version,
    # stream index, checkpoints (offsets, commits, state changelogs), metrics, the catalog, the
    # dashboard, task, stream and broker logs, the on-call log, the Airflow database, and both output
    # topics as the broker stored them (record batches decoded by the scanner).
    findings, scanned = scan_tree(tmp_path, exclude=("lake/raw/", "kafka/data/logs/payments.transactions-", "dashboard.html"))
    assert scanned > 100 and findings == [], findings[:20]
    # The dashboard embeds plotly.js, whose minified code has digit runs that pass the Luhn check;
    # everything else on the page (the charts' data, the tables) is scanned.
    assert get_plotlyjs() in page
    (tmp_path / "dashboard-data").mkdir()
    (tmp_path / "dashboard-data" / "dashboard.html").write_text(page.replace(get_plotlyjs(), ""))
    findings, _ = scan_tree(tmp_path / "dashboard-data")
    assert findings == [], findings[:20]
    outputs = [
        path
        for topic in ("payments.fraud-alerts", "payments.dead-letter")
        for path in sorted((tmp_path / "kafka" / "data" / "logs").glob(f"{topic}-*/*.log"))
    ]
    decoded = b"".join(batch for path in outputs for batch in kafka_segment_records(path.read_bytes()))
    assert decoded.count(b'"reason_code":"unparseable"') >= 1 and decoded.count(b"[pan ****") >= 1, "topics were read"
    # The excluded inputs do hold card numbers in every shape the masking must catch.
    in_raw, _ = scan_tree(tmp_path / "lake" / "raw", exclude=("_ground_truth/",))
    assert {"gateway_a", "gateway_b", "gateway_c", "fraud_scores", "settlements"} <= {
        f.split("/lake/raw/")[1].split("/")[0] for f in in_raw if "Luhn-valid" in f
    }


def assert_progress_was_reported(stdout: str, stream: dict) -> None:
    """Without a terminal (captured here, as in CI logs) the progress is plain lines: the stream
    figures every --progress-seconds, the last one once the app consumed everything, and one line
    per state change of every task of the daily DAG (task ids from the DAG object)."""
    counts = [tuple(int(n.replace(",", "")) for n in m) for m in re.findall(r"sent +([0-9,]+) \| consumed +([0-9,]+)", stdout)]
    assert len(counts) >= 3, stdout[-5000:]
    assert counts[-1] == (stream["total"], stream["total"])
    assert [sent for sent, _ in counts] == sorted(sent for sent, _ in counts)
    final = {}
    for task_id, state in re.findall(r"payments_daily_index\.(\S+): (\w+)", stdout):
        final[task_id] = state
    assert set(final) == set(task_order(load_dag("payments_daily_index")))
    assert set(final.values()) <= {"success", "skipped"}, final
    assert "payments_stream_supervisor." in stdout
