"""The test suite keeps out of the user's local Airflow home and lake (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import PROJECT_ROOT

USER_LOCAL = PROJECT_ROOT / ".local"


def test_airflow_runs_of_the_tests_go_to_a_home_of_their_own():
    from airflow.configuration import conf

    home = Path(os.environ["AIRFLOW_HOME"])
    assert not home.is_relative_to(USER_LOCAL)
    assert conf.get("database", "sql_alchemy_conn") == f"sqlite:///{home / 'airflow.db'}"
    assert not Path(conf.get("logging", "base_log_folder")).is_relative_to(USER_LOCAL)


def test_the_local_profile_of_the_tests_writes_outside_the_users_lake():
    from payments_platform.profiles import load_profile

    load_profile.cache_clear()
    try:
        lake = load_profile("local").lake
    finally:
        load_profile.cache_clear()
    for uri in (lake.raw_uri, lake.index_uri, lake.checkpoint_uri, lake.metrics_uri):
        assert not Path(uri.removeprefix("file://")).is_relative_to(USER_LOCAL), uri


def test_the_project_scripts_started_by_a_test_use_the_tests_airflow_home():
    """scripts/env.sh (sourced by run_local.sh, setup.sh) keeps the tests' home: `run_local.sh ui`
    started by a test must not open the user's .local/airflow."""
    import subprocess

    script = f'source "{PROJECT_ROOT}/scripts/env.sh" >/dev/null 2>&1; echo "$AIRFLOW_HOME|$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    home = os.environ["AIRFLOW_HOME"]
    assert out == f"{home}|sqlite:///{home}/airflow.db"
    clean = {key: value for key, value in os.environ.items() if key != "PAYMENTS_AIRFLOW_HOME"}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env=clean).stdout.strip()
    assert out.split("|")[0] == str(USER_LOCAL / "airflow")  # a person's shell: the project's own home
