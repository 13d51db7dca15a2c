"""Deterministic payments workload generator with a ground-truth manifest.

Library API (used by tests, benchmarks and the streaming producer)::

    from devtools.generator import WorkloadConfig, generate_day, write_drops, write_ground_truth
    workload = generate_day(WorkloadConfig(date="2026-11-21", transactions=100_000, seed=7))
    workload.transactions            # Arrow table of raw records in produce order
    for key, value, ts_ms in workload.kafka_messages(): ...

CLI: ``python -m devtools.generator --help`` (subcommands ``generate`` and ``stream``).
"""

from devtools.generator.drops import ground_truth_location, read_ground_truth, write_drops, write_ground_truth
from devtools.generator.workload import Workload, WorkloadConfig, generate_day

__all__ = [
    "Workload",
    "WorkloadConfig",
    "generate_day",
    "ground_truth_location",
    "read_ground_truth",
    "write_drops",
    "write_ground_truth",
]
