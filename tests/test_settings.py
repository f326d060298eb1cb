"""Settings: a wrong one stops the start with one line naming it, at every entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import Config, SettingError, instance_path, make_folders, server_settings
from engine.errors import FunctionError
from functions.health_policy import HealthPolicy, defaults
from tests.conftest import ROOT

REFUSED = [
    ({"API_ALLOWED_ORIGINS": "https://app.example.com/path"},
     "API_ALLOWED_ORIGINS must be *, none, or origins such as https://app.example.com (no "
     "path), got 'https://app.example.com/path'"),
    ({"API_ALLOWED_ORIGINS": "app.example.com"}, "got 'app.example.com'"),
    ({"CATALOG_LOG_LEVEL": "verbose"},
     "CATALOG_LOG_LEVEL must be one of debug, info, warning, error, critical, got 'verbose'"),
    ({"CATALOG_ENV": "prod"}, "CATALOG_ENV must be one of production, development, got 'prod'"),
    ({"CATALOG_ENV": "production"}, "SECRET_KEY must be set when CATALOG_ENV=production"),
    ({"BEHIND_PROXY": "true"}, "BEHIND_PROXY is a switch: 1 (on) or 0 (off), got 'true'"),
    ({"HEALTH_WINDOW_SECONDS": "30"}, "HEALTH_WINDOW_SECONDS must be at least 60"),
    ({"HEALTH_WINDOW_SECONDS": "90"},
     "HEALTH_WINDOW_SECONDS must be whole minutes (a multiple of 60), got '90'"),
    ({"CATALOG_ENV": "production", "SECRET_KEY": "  "}, "at least 16 characters"),
    ({"CATALOG_ENV": "production", "SECRET_KEY": "aaaaaaaa        bbbbbbb"}, "at least 16"),
    ({"DATABASE_URL": "garbage"}, "DATABASE_URL must be sqlite:///PATH or postgresql+psycopg"),
    ({"DATABASE_URL": "postgresql://u@h/db"}, "got 'postgresql://u@h/db'"),  # psycopg2's
    ({"CREDITS_PER_USD": "1e999999999"}, "CREDITS_PER_USD must be from 0.000001 to 1000000"),
    ({"CREDITS_PER_USD": "1e-999999999"}, "CREDITS_PER_USD must be from 0.000001 to 1000000"),
    ({"OIDC_DEFAULT_ROLE": "superuser"}, "OIDC_DEFAULT_ROLE must be one of admin, editor"),
    ({"MONITOR_INTERVAL_SECONDS": "99999999999"}, "MONITOR_INTERVAL_SECONDS must be at most"),
    ({"USAGE_MINUTE_RETENTION_HOURS": "99999999999999"}, "must be at most"),
    # Werkzeug would refuse each at the first password it hashes, not at the start
    *[({"PASSWORD_HASH_METHOD": method}, "PASSWORD_HASH_METHOD must be a Werkzeug hashing")
      for method in ("scrypt:0:0:0", "scrypt:3", "scrypt:1000:8:1", "pbkdf2:sha256:0",
                     "pbkdf2:shake_128", "pbkdf2:sha256:99999999999", "pbkdf2:sha256:٣",
                     # within Werkzeug's shape, past OpenSSL's limits on n, r and p
                     "scrypt:16:8:1", "scrypt:65536:1:1", "scrypt:2:1:1")],
    ({"CATALOG_ENV": "production", "SECRET_KEY": "\u200b" * 20}, "at least 16"),
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
    with pytest.raises(SettingError) as refused:
        Config.from_environ(tmp_path, environ)
    assert said in str(refused.value)


def test_a_refused_database_url_is_named_without_its_password(tmp_path):
    """The message goes to a terminal or a unit's journal: the URL is shown, its password not."""
    with pytest.raises(SettingError) as refused:
        Config.from_environ(tmp_path, {"DATABASE_URL": "postgresql://catalog:s3cret@h/db"})
    assert "got 'postgresql://catalog:***@h/db'" in str(refused.value)
    assert "s3cret" not in str(refused.value)


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


def test_a_folder_a_setting_names_that_cannot_be_made_stops_the_start(tmp_path):
    """A rate-limit file whose folder cannot be made had failed every API call with a 500
    while /healthz said 200; now the start stops, naming the setting."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    config = Config.from_environ(tmp_path, {"RATE_LIMIT_STORAGE": str(blocked / "c.sqlite3")})
    with pytest.raises(SettingError, match=f"RATE_LIMIT_STORAGE: the folder {blocked}"):
        make_folders(config, tmp_path)
    with pytest.raises(SettingError, match="INSTANCE_PATH: the folder"):
        make_folders(Config.from_environ(tmp_path, {}), blocked / "instance")
    folder = tmp_path / "counts.sqlite3"  # a folder where the counters' file should be
    folder.mkdir()
    config = Config.from_environ(tmp_path, {"RATE_LIMIT_STORAGE": str(folder)})
    with pytest.raises(SettingError, match=f"RATE_LIMIT_STORAGE: {folder} cannot be opened"):
        make_folders(config, tmp_path)


def test_a_relative_instance_path_is_read_from_the_working_folder(tmp_path, monkeypatch):
    """Flask takes an absolute instance path only: a relative one had been a traceback."""
    monkeypatch.chdir(tmp_path)
    assert instance_path({"INSTANCE_PATH": "here/instance"}) == str(tmp_path / "here/instance")
    assert instance_path({}) == str(ROOT / "instance")  # beside wsgi.py, where Flask puts it


def test_accepted_spellings(tmp_path):
    config = Config.from_environ(tmp_path, {
        "CATALOG_LOG_LEVEL": "debug", "CATALOG_ENV": "development", "PORT": "8080",
        "PASSWORD_HASH_METHOD": "scrypt:32768:8:1", "CREDITS_PER_USD": "0.5",
        "DATABASE_URL": " postgresql+psycopg://u:p@h:5432/db "})
    assert config["DATABASE_URL"] == "postgresql+psycopg://u:p@h:5432/db"
    assert Config.from_environ(tmp_path, {"PASSWORD_HASH_METHOD": "pbkdf2:sha256:600000"})
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


def test_gunicorns_own_settings_are_said_before_gunicorn_reads_them(tmp_path):
    """gunicorn reads WEB_CONCURRENCY as it is imported, before its conf file runs ('abc' is
    its traceback): the `flask --app wsgi db upgrade` that `make run` and the unit run before
    it says it in one line instead."""
    flask = str(Path(sys.executable).with_name("flask"))
    for value, said in (("abc", "must be a whole number, got 'abc'"),
                        ("-1", "must not be negative, got '-1'")):
        done = _started([flask, "--app", "wsgi", "db", "upgrade"], tmp_path,
                        WEB_CONCURRENCY=value)
        assert (done.returncode, done.stderr.strip()) == (1, f"Error: WEB_CONCURRENCY {said}")
    assert not (tmp_path / "c.db").exists()  # stopped before anything


def test_production_needs_its_key_whichever_way_the_settings_came(tmp_path, monkeypatch):
    """create_app's test_config may say production too: it gets no development key."""
    from wsgi import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(SettingError, match="SECRET_KEY must be set when CATALOG_ENV=production"):
        create_app({"CATALOG_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
