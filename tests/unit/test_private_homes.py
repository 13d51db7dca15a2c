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
