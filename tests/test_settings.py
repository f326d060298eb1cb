"""Settings: a wrong one stops the start with one line naming it, at every entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import Config, SettingError, server_settings
from engine.errors import FunctionError
from functions.health_policy import HealthPolicy, defaults
from tests.conftest import ROOT

REFUSED = [
    ({"CATALOG_LOG_LEVEL": "verbose"},
     "CATALOG_LOG_LEVEL must be one of debug, info, warning, error, critical, got 'verbose'"),
    ({"CATALOG_ENV": "prod"}, "CATALOG_ENV must be one of production, development, got 'prod'"),
    ({"CATALOG_ENV": "production"}, "SECRET_KEY must be set when CATALOG_ENV=production"),
    ({"BEHIND_PROXY": "true"}, "BEHIND_PROXY is a switch: 1 (on) or 0 (off), got 'true'"),
    ({"HEALTH_WINDOW_SECONDS": "30"}, "HEALTH_WINDOW_SECONDS must be at least 60"),
]
# Each as a model's healthPolicy would be refused (functions/health_policy.py), at start.
POLICY_REFUSED = [
    ({"HEALTH_FAILING_SUCCESS_RATE": "99"},
     "HEALTH_FAILING_SUCCESS_RATE (99) must not be above HEALTH_DEGRADED_SUCCESS_RATE (95)"),
    ({"HEALTH_DEGRADED_P95_SECONDS": "60", "HEALTH_FAILING_P95_SECONDS": "30"},
     "HEALTH_FAILING_P95_SECONDS (30) must not be below HEALTH_DEGRADED_P95_SECONDS (60)"),
    ({"HEALTH_MIN_GENERATIONS": "2000000"}, "HEALTH_MIN_GENERATIONS must be at most 1000000"),
    ({"HEALTH_WINDOW_SECONDS": "100000"}, "HEALTH_WINDOW_SECONDS must be at most 86400"),
    ({"HEALTH_DEGRADED_P95_SECONDS": "100000"},
     "HEALTH_DEGRADED_P95_SECONDS must be at most 86400 seconds"),
]
FIELD = {"HEALTH_WINDOW_SECONDS": "windowSeconds", "HEALTH_MIN_GENERATIONS": "minGenerations",
         "HEALTH_DEGRADED_SUCCESS_RATE": "degradedSuccessRate",
         "HEALTH_FAILING_SUCCESS_RATE": "failingSuccessRate",
         "HEALTH_DEGRADED_P95_SECONDS": "degradedP95Seconds",
         "HEALTH_FAILING_P95_SECONDS": "failingP95Seconds"}
SERVER_REFUSED = [
    ({"PORT": "99999"}, "PORT must be a port, 1 to 65535, got '99999'"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of debug, info, warning, error, critical"),
]


@pytest.mark.parametrize(("environ", "said"), REFUSED)
def test_an_app_setting_it_cannot_start_with_is_named(environ, said, tmp_path):
    with pytest.raises(SettingError, match=said.replace("(", r"\(").replace(")", r"\)")):
        Config.from_environ(tmp_path, environ)


@pytest.mark.parametrize(("environ", "said"), POLICY_REFUSED)
def test_catalog_wide_health_thresholds_obey_a_models_rules(environ, said, tmp_path):
    """What a model's healthPolicy may not say, the catalog-wide settings may not either."""
    with pytest.raises(SettingError) as refused:
        Config.from_environ(tmp_path, environ)
    assert said in str(refused.value)
    policy = {**defaults(Config.from_environ(tmp_path, {})),
              **{FIELD[name]: float(value) for name, value in environ.items()}}
    with pytest.raises(FunctionError):
        HealthPolicy().check(policy, "healthPolicy")


@pytest.mark.parametrize(("environ", "said"), SERVER_REFUSED)
def test_a_server_setting_it_cannot_start_with_is_named(environ, said):
    with pytest.raises(SettingError, match=said):
        server_settings(environ)


def test_accepted_spellings(tmp_path):
    config = Config.from_environ(tmp_path, {"CATALOG_LOG_LEVEL": "debug",
                                            "CATALOG_ENV": "development", "PORT": "8080"})
    assert (config["CATALOG_LOG_LEVEL"], config["CATALOG_ENV"]) == ("debug", "development")
    assert server_settings({"PORT": "8080", "LOG_LEVEL": "WARNING"})["bind"] == "127.0.0.1:8080"


def _started(command: list[str], tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "BIND": "127.0.0.1:1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", **environ}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("entry", ["flask", "gunicorn"])
def test_each_entry_point_says_it_in_one_line(entry, tmp_path):
    """`flask --app wsgi ...` and gunicorn's master (before any worker boots): exit 1 and
    the one line, no traceback."""
    binary = str(Path(sys.executable).with_name(entry))
    command = ([binary, "--app", "wsgi", "tokens", "list"] if entry == "flask"
               else [binary, "-c", "deploy/gunicorn.conf.py", "wsgi:app"])
    server = [SERVER_REFUSED[0]] if entry == "gunicorn" else []  # PORT is gunicorn's alone
    for environ, said in [REFUSED[0], POLICY_REFUSED[0], *server]:
        done = _started(command, tmp_path, **environ)
        assert (done.returncode, done.stderr.strip()) == (1, f"Error: {said}")
