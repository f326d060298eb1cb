"""Real servers for the tests: a throwaway PostgreSQL cluster, and the app under gunicorn."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL binaries not found: install them (apt-get install -y postgresql); "
        ".ci/run does this on CI"
    )


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only."""

    def __init__(self, durable: bool = False, settings: dict[str, str] | None = None):
        self.durable = durable  # the tests trade durability for speed; the benchmark does not
        self.settings = settings or {}  # more server settings (-c name=value)
        self.bindir = _pg_bindir()
        # Not under pytest's folder: that one is private to root, and the server runs as postgres.
        self.base = Path(tempfile.mkdtemp(prefix="catalog-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.user = "postgres"
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)
            shutil.chown(self.base, self.user)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.base} -c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        result = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60",
                           "-l", str(self.base / "server.log"), "start", check=False)
        if result.returncode != 0:
            log = (self.base / "server.log").read_text() if (self.base / "server.log").exists() \
                else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """The libpq connection string, for psycopg without SQLAlchemy."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def create_database(self, name: str, template: str | None = None) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')


class Gunicorn:
    """The app under gunicorn with deploy/gunicorn.conf.py, on a free loopback port."""

    def __init__(self, root: Path, database_url: str, instance: Path, workers: int | None = 2,
                 env: dict | None = None, app: str = "wsgi:app"):
        self.root, self.database_url, self.instance = root, database_url, instance
        self.workers, self.app = workers, app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        instance.mkdir(parents=True, exist_ok=True)
        self.log = instance.parent / f"gunicorn-{self.port}.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "INSTANCE_PATH": str(self.instance),
            "SECRET_KEY": "test-secret",
            "BIND": f"127.0.0.1:{self.port}",
            "LOG_LEVEL": "warning",
            **self.extra_env,
        }
        if self.workers is not None:
            env["WEB_CONCURRENCY"] = str(self.workers)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "-c", "deploy/gunicorn.conf.py", self.app],
            cwd=self.root, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, 30, f"gunicorn on {self.url}")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log.read_text()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "--ppid", str(self.process.pid), "-o", "pid="],
                             capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def worker_rss_kib(self) -> list[int]:
        """Resident memory of each worker process."""
        out = subprocess.run(["ps", "--ppid", str(self.process.pid), "-o", "rss="],
                             capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_hosts(root: Path, database_url: str, base: Path, count: int, workers: int = 2,
                env: dict | None = None) -> list[Gunicorn]:
    """`count` hosts of a fleet on one database: separate gunicorn masters, each with its own
    instance folder, change marks (CATALOG_MARKS_DIR) and temporary folder (TMPDIR), as
    separate machines would have. The caller stops them."""
    hosts: list[Gunicorn] = []
    try:
        for number in range(count):
            home = base / f"host{number}"
            (home / "tmp").mkdir(parents=True, exist_ok=True)
            host = Gunicorn(root, database_url, home / "instance", workers=workers, env={
                "CATALOG_MARKS_DIR": str(home / "marks"), "TMPDIR": str(home / "tmp"),
                **(env or {})})
            hosts.append(host)
            host.start()
    except BaseException:
        for host in hosts:
            host.stop()
        raise
    return hosts


def kill_host(host: Gunicorn) -> None:
    """The host is gone at once: its master and workers killed, nothing shut down cleanly."""
    os.killpg(host.process.pid, signal.SIGKILL)
    host.process.wait()
