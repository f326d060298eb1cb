"""Hardening: rate limits, request ids, logs and metrics (sign-in throttles:
test_sign_in_throttle.py)."""

from __future__ import annotations

import json
import logging
import os
import time

import requests

from tests.conftest import single_lookups, token_lookups, within_one_window

QUERY = {"path": "models:getDefaultModel", "args": {}}
DAY = 86_400


def test_rate_limit_holds_across_workers(seeded, gunicorn, make_token):
    other = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, RATE_LIMIT_PER_MINUTE="6")

    def attempt():
        auth = {"Authorization": f"Bearer {make_token('catalog:write')}"}
        answers = [requests.post(f"{server.url}/api/query", json=QUERY, headers=auth,
                                 timeout=10) for _ in range(9)]
        return [a.status_code for a in answers], answers[-1]

    statuses, refused = within_one_window(attempt)  # the 9th too: a new minute would admit it
    assert statuses == [200] * 6 + [429, 429, 429]
    assert refused.json()["code"] == "RateLimited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    fresh = requests.post(f"{server.url}/api/query", json=QUERY, timeout=10,
                          headers={"Authorization": f"Bearer {other}"})
    assert fresh.status_code == 200


def test_request_id_and_json_log_line(seeded, client):
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    from engine.observe import JsonFormatter

    handler = Capture()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("catalog.request")
    logger.addHandler(handler)
    try:
        response = client.post("/api/query", json={
            "path": "pricing:getCreditCost", "args": {"modelId": "no/such", "quality": "x"}},
            headers={"X-Request-Id": "req-123"})
        generated = client.post("/api/query", json=QUERY)
    finally:
        logger.removeHandler(handler)
    assert response.headers["X-Request-Id"] == "req-123"
    assert len(generated.headers["X-Request-Id"]) == 32
    line = json.loads(records[0])
    assert line["request_id"] == "req-123" and line["function"] == "pricing:getCreditCost"
    assert line["outcome"] == "error" and line["code"] == "NOT_FOUND"
    assert line["status"] == 200 and line["duration_ms"] >= 0
    assert "Authorization" not in records[0]


def test_metrics_count_calls_over_every_worker(seeded, gunicorn, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, TMPDIR=str(temporary))
    assert len(list(temporary.glob("catalog-metrics-*"))) == 1  # the workers' shared folder
    for _ in range(12):
        requests.post(f"{server.url}/api/query", json=QUERY, timeout=10)
    requests.post(f"{server.url}/api/query", json={
        "path": "models:getModelById", "args": {"modelId": 5}}, timeout=10)
    scraped = requests.get(f"{server.url}/metrics", timeout=10)
    # Prometheus' own type, once (Flask had added a second charset)
    assert scraped.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    text = scraped.text
    calls = [line for line in text.splitlines()
             if line.startswith("catalog_function_calls_total{")
             and 'function="models:getDefaultModel"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in calls) == 12
    assert any(line.startswith("catalog_function_errors_total{")
               and 'code="INVALID_ARGUMENT"' in line for line in text.splitlines())
    assert "catalog_function_duration_seconds_bucket" in text
    server.stop()
    assert list(temporary.glob("catalog-metrics-*")) == []  # it went with the server (each
    # start had left one in /tmp)


def test_the_process_id_is_renewed_in_a_forked_child():
    """Per-request checks ask engine/process.py, not the kernel, whether their process was
    forked since (the metrics' files, the log writer): a forked worker gets its own id."""
    from engine import process

    assert process.pid() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report, and leave without running anything of the parent's
        os.write(write, f"{process.pid()} {os.getpid()}".encode())
        os._exit(0)
    os.close(write)
    reported = os.read(read, 100).decode().split()
    os.close(read)
    os.waitpid(child, 0)
    assert reported == [str(child), str(child)] and child != os.getpid()
    assert process.pid() == os.getpid()


def test_authenticated_answers_are_not_cached(seeded, client, make_token):
    token = make_token("catalog:write")
    response = client.post("/api/query", json=QUERY,
                           headers={"Authorization": f"Bearer {token}"})
    assert response.headers["Cache-Control"] == "no-store"


def test_tokens_list_shows_what_an_operator_needs(seeded, runner):
    runner.invoke(args=["tokens", "create", "backend", "--scope", "stats:write",
                        "--expires-in-days", "30"])
    listed = runner.invoke(args=["tokens", "list"]).output.splitlines()
    assert listed[0].split("\t") == ["name", "prefix", "scopes", "created", "created by",
                                      "last used", "expires", "state"]
    row = next(line for line in listed if line.startswith("backend")).split("\t")
    assert row[2] == "stats:write" and row[4] == "cli" and row[5] == "-"
    assert row[6] != "-" and row[7] == "active"


def test_a_token_that_would_expire_at_once_is_refused_by_the_cli(seeded, runner):
    """0 days is a mistake, not "never": refused as the console refuses it, nothing made."""
    for days in ("0", "-1"):
        result = runner.invoke(args=["tokens", "create", f"soon{days}", "--scope", "admin",
                                     "--expires-in-days", days])
        assert result.exit_code != 0 and "expiresInDays must be at least 1" in result.output
    assert not [line for line in runner.invoke(args=["tokens", "list"]).output.splitlines()
                if line.startswith("soon")]


def test_refused_tokens_are_limited_per_address(seeded, client, make_token):
    """A guesser's address is refused (429) before its guesses cost database lookups; another
    address, a request without a token, and a valid token from the guesser's own address (a
    backend behind the same NAT as a misconfigured one) are not affected."""
    seeded.config["INVALID_TOKENS_PER_MINUTE"] = 3
    guesser = {"REMOTE_ADDR": "203.0.113.7"}
    valid = {"Authorization": f"Bearer {make_token('catalog:write')}"}

    def attempt():
        seen, stop = token_lookups()
        try:
            answers = [client.post("/api/query", json=QUERY, environ_base=guesser,
                                   headers={"Authorization": f"Bearer mc_deadbeef_guess{i}"})
                       for i in range(5)]
            malformed = client.post("/api/query", json=QUERY, environ_base=guesser,
                                    headers={"Authorization": "Basic eA=="})
        finally:
            stop()
        beside = client.post("/api/query", json=QUERY, environ_base=guesser, headers=valid)
        return answers, malformed, beside, seen

    answers, malformed, beside, seen = within_one_window(attempt)
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    assert answers[3].get_json()["code"] == "RateLimited"
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert len(single_lookups(seen)) == 3  # the address past its limit costs no lookup
    assert malformed.status_code == 429
    assert beside.status_code == 200, beside.get_json()
    assert client.post("/api/query", json=QUERY, environ_base=guesser).status_code == 200
    other = client.post("/api/query", json=QUERY, environ_base={"REMOTE_ADDR": "198.51.100.1"},
                        headers={"Authorization": f"Bearer {make_token('catalog:write')}"})
    assert other.status_code == 200


def test_a_refusal_stands_when_the_live_tokens_cannot_be_read(seeded, client, monkeypatch):
    """Past the limit, a guess is checked against the live tokens' hashes; when they cannot
    be read (the database down), the guess is refused as before (429, not 503), and the read
    is not tried again for every guess."""
    from sqlalchemy.exc import OperationalError

    import functions.access

    reads = []

    def down(engine):
        reads.append(engine)
        raise OperationalError("SELECT", {}, Exception("the database is down"))

    monkeypatch.setattr(functions.access, "_read_live_hashes", down)
    seeded.config["INVALID_TOKENS_PER_MINUTE"] = 2
    guesser = {"REMOTE_ADDR": "203.0.113.9"}

    def attempt():
        reads.clear()
        return [client.post("/api/query", json=QUERY, environ_base=guesser,
                            headers={"Authorization": f"Bearer mc_deadbeef_guess{i}"}
                            ).status_code for i in range(6)]

    assert within_one_window(attempt) == [401, 401] + [429] * 4
    assert len(reads) <= 1


def test_rate_limiter_fails_open_when_its_store_is_unusable(seeded, client, tmp_path):
    from engine.ratelimit import Counters

    seeded.extensions["counters"] = Counters(tmp_path)  # a folder, not a database file
    assert client.post("/api/query", json=QUERY).status_code == 200


def test_api_hits_are_shared_in_batches_yet_hold_the_limit(tmp_path):
    from engine.ratelimit import Counters

    store = tmp_path / "counters.sqlite3"
    workers = [Counters(store), Counters(store)]  # two processes' views of one host's counts
    limit, batch = 1000, 10
    admitted = 0
    for hit in range(3 * limit):
        count, _ = workers[hit % 2].take("api:token:x", DAY, limit)  # a window no run crosses
        if count > limit:
            break
        admitted += 1
    # Never refused early; past the limit by at most the other worker's unshared batch.
    assert limit <= admitted <= limit + batch
    shared, _ = workers[0].count("api:token:x", DAY)
    assert admitted - 2 * batch <= shared <= admitted + 1


def test_log_lines_are_written_in_batches_and_warnings_at_once(tmp_path):
    from engine.observe import JsonFormatter, LineHandler

    path = tmp_path / "log"
    with path.open("w") as stream:
        handler = LineHandler(stream)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger("test.lines")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
        try:
            logger.warning("first")
            assert [json.loads(line)["message"] for line in path.read_text().splitlines()] == [
                "first"]
            logger.info("second")
            logger.warning("third")  # written at once, after what was queued before it
            messages = [json.loads(line)["message"] for line in path.read_text().splitlines()]
            assert messages == ["first", "second", "third"]
            logger.info("fourth")  # written by the background writer
            deadline = time.monotonic() + 5
            while "fourth" not in path.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert path.read_text().splitlines()[-1].endswith('"message": "fourth"}')
        finally:
            logger.removeHandler(handler)
