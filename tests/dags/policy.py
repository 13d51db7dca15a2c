"""DAG policy: the rules every DAG in this project follows, as a reusable checker.

``parse_dag_file`` loads one file into a DagBag while Airflow Variables,
Connections, sockets and Spark are made to raise, so a DAG that touches any of them
at parse time shows up as an import error. ``policy_violations`` lists every rule a
parsed DAG breaks.
"""

from __future__ import annotations

import ast
import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

MAX_PARSE_SECONDS = 1.0
MIN_RETRIES = 2
CATCHUP_REASON_MARKER = "catchup reason:"


class ParseTimeAccess(RuntimeError):
    """A DAG file touched a Variable, Connection, the network or Spark while parsing."""


def _forbidden(what: str):
    def raiser(*args, **kwargs):
        raise ParseTimeAccess(f"{what} accessed at DAG parse time")

    return raiser


@contextlib.contextmanager
def forbid_parse_time_access() -> Iterator[None]:
    from airflow.sdk import BaseHook, Connection, Variable

    class _NoSpark:
        def find_spec(self, name, path=None, target=None):
            if name == "pyspark" or name.startswith("pyspark."):
                raise ParseTimeAccess(f"import of {name} at DAG parse time")
            return None

    blocker = _NoSpark()
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name == "pyspark" or name.startswith("pyspark.")}
    sys.meta_path.insert(0, blocker)
    patches = [
        mock.patch.object(Variable, "get", _forbidden("Variable.get")),
        mock.patch.object(Variable, "set", _forbidden("Variable.set")),
        mock.patch.object(Connection, "get", _forbidden("Connection.get")),
        mock.patch.object(BaseHook, "get_connection", _forbidden("BaseHook.get_connection")),
        mock.patch.object(socket.socket, "connect", _forbidden("socket.connect")),
        mock.patch.object(socket, "create_connection", _forbidden("socket.create_connection")),
    ]
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in reversed(patches):
            patch.stop()
        sys.meta_path.remove(blocker)
        sys.modules.update(hidden)


def parse_dag_file(path: Path):
    """(DagBag, seconds to parse) for one DAG file, with parse-time access forbidden."""
    from airflow.dag_processing.dagbag import DagBag

    with forbid_parse_time_access():
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        elapsed = time.perf_counter() - started
    return bag, elapsed


def _dag_call_keywords(source: str) -> set[str]:
    keywords: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "DAG":
            keywords |= {kw.arg for kw in node.keywords if kw.arg}
    return keywords


def policy_violations(dag, source: str) -> list[str]:
    problems = []
    owners = {task.owner for task in dag.tasks}
    if not owners or owners & {None, "", "airflow"}:
        problems.append(f"{dag.dag_id}: every task needs a real owner (got {sorted(map(str, owners))})")
    if not dag.tags:
        problems.append(f"{dag.dag_id}: no tags")
    if not (dag.doc_md or "").strip():
        problems.append(f"{dag.dag_id}: no doc_md")
    retries = (dag.default_args or {}).get("retries", 0)
    if retries < MIN_RETRIES:
        problems.append(f"{dag.dag_id}: default retries {retries} < {MIN_RETRIES}")
    if dag.catchup and CATCHUP_REASON_MARKER not in (dag.doc_md or "").lower():
        problems.append(f"{dag.dag_id}: catchup=True without a documented '{CATCHUP_REASON_MARKER}' in doc_md")
    if "max_active_runs" not in _dag_call_keywords(source):
        problems.append(f"{dag.dag_id}: max_active_runs is not set explicitly")
    return problems
