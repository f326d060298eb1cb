"""The wire contract: bad input of every kind gets a clear error, never a 500, changes nothing."""

from __future__ import annotations

import base64
import json
import logging
import re
import struct

import pytest

from tests.conftest import catalog_fingerprint, within_one_window
from tests.test_catalog import RAY

UPDATE = "models:updateModel"


def patch(**fields):
    return {"modelId": RAY, "patch": fields}


FUNCTION_ERRORS = [
    ("args not an object", UPDATE, "nope", "args", "must be an object"),
    ("missing field", UPDATE, {"patch": {}}, "modelId", "is required"),
    ("extra field", UPDATE, {**patch(), "evil": 1}, "evil", "not an allowed field"),
    ("mistyped field", UPDATE, {"modelId": 5, "patch": {}}, "modelId", "must be a string"),
    ("negative price", UPDATE, patch(costPerSecond=-1), "patch.costPerSecond", "greater than 0"),
    ("zero price", UPDATE, patch(costPerSecond=0), "patch.costPerSecond", "greater than 0"),
    ("enormous price", UPDATE, patch(costPerSecond=1e308), "patch.costPerSecond", "at most"),
    ("huge integer", UPDATE, patch(maxDuration=10**40), "patch.maxDuration", "at most"),
    ("fractional duration", UPDATE, patch(supportedDurations=[5.5]),
     "patch.supportedDurations[0]", "whole number"),
    ("zero duration", UPDATE, patch(supportedDurations=[0]),
     "patch.supportedDurations[0]", "at least 1"),
    ("boolean as number", UPDATE, patch(maxDuration=True), "patch.maxDuration", "a number"),
    ("empty name", UPDATE, patch(name=""), "patch.name", "must not be empty"),
    ("100 KB name", UPDATE, patch(name="x" * 100_000), "patch.name", "at most 200"),
    ("100 KB modelId", "models:getModelById", {"modelId": "x" * 100_000}, "modelId", "at most"),
    ("unknown quality value", UPDATE, patch(supportedQualities=["Ultra HD!"]),
     "patch.supportedQualities[0]", "not valid"),
    ("repeated durations", UPDATE, patch(supportedDurations=[5, 5]),
     "patch.supportedDurations", "repeat"),
    ("reserved key in JSON", UPDATE, patch(modelParameters={"$where": 1}),
     "patch.modelParameters.$where", "reserved"),
    ("deep JSON", UPDATE, patch(requirements=json.loads('{"a":' * 40 + "1" + "}" * 40)),
     "patch.requirements", "nests deeper"),
    ("NUL character", "models:getModelById", {"modelId": "a\x00b"}, "modelId", "NUL"),
    ("lone surrogate", "models:getModelById", {"modelId": "a\ud800"}, "modelId", "Unicode"),
    ("NUL in JSON", UPDATE, patch(requirements={"k": "a\x00"}), "patch.requirements.k", "NUL"),
    ("revision beyond any row", "history:revertModel", {"modelId": RAY, "revision": 2**40},
     "revision", "at most"),
    ("forged history cursor", "history:getModelHistory",
     {"modelId": RAY, "paginationOpts": {"numItems": 5, "cursor": "OTk5OTk5OTk5OTk5"}},
     "paginationOpts.cursor", "not a cursor"),
    ("null for required", UPDATE, {"modelId": None, "patch": {}}, "modelId", "must be a string"),
    ("stats negative time", "models:updateModelStats",
     {"modelId": RAY, "generationTime": -1, "success": True}, "generationTime", "at least 0"),
]


@pytest.mark.parametrize("case,path,args,field,message", FUNCTION_ERRORS,
                         ids=[c[0] for c in FUNCTION_ERRORS])
def test_bad_arguments_are_function_errors(seeded, api, case, path, args, field, message):
    before = catalog_fingerprint(seeded)
    kind = "query" if path in ("models:getModelById", "history:getModelHistory") else "mutation"
    response = api.post(kind, path, args)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "error"
    assert body["errorData"]["code"] == "INVALID_ARGUMENT"
    assert body["errorData"].get("field", "args").startswith(field)
    assert message in body["errorMessage"]
    assert catalog_fingerprint(seeded) == before


def raw(client, endpoint: str, data, headers=None):
    return client.post(f"/api/{endpoint}", data=data, headers={
        "Content-Type": "application/json", **(headers or {})})


def test_an_integer_of_more_digits_than_python_converts_is_a_fields_error(seeded, client, api):
    """4,301 digits and more: valid JSON, larger than any bound: the field says so (it was
    called invalid JSON), and nothing changes."""
    before = catalog_fingerprint(seeded)
    for sign in (b"", b"-"):
        body = raw(client, "mutation", b'{"path":"models:updateModel","args":{"modelId":"'
                   + RAY.encode() + b'","patch":{"maxDuration":' + sign + b"9" * 4301 + b"}}}",
                   {"Authorization": f"Bearer {api.token}"}).get_json()
        assert body["errorData"] == {"code": "INVALID_ARGUMENT", "field": "patch.maxDuration"}
        assert body["errorMessage"] == ("patch.maxDuration is too large: past the largest "
                                        "number a double holds (about 1.8e308)")
    assert catalog_fingerprint(seeded) == before


TRANSPORT_ERRORS = [
    ("not JSON", "query", b"{nope", 400, "BadJsonBody"),
    ("JSON array body", "query", b"[1,2]", 400, "BadJsonBody"),
    ("NaN literal", "query",
     b'{"path":"pricing:getCreditCost","args":{"modelId":"a","quality":"b","duration":NaN}}',
     400, "BadJsonBody"),
    ("a number no decimal holds", "query",  # its exponent: it was a 500
     b'{"path":"pricing:getCreditCost","args":{"duration":1e-99999999999999999999}}',
     400, "BadJsonBody"),
    ("a zero no decimal holds", "query", b'{"path":"x","args":{"a":0e99999999999999999999}}',
     400, "BadJsonBody"),
    ("deeply nested body", "query", b"[" * 100_000 + b"]" * 100_000, 400, "BadJsonBody"),
    ("deeply nested convex_encoded_json args", "query",
     b'{"path":"models:getModelById","format":"convex_encoded_json","args":{"modelId":'
     + b"[" * 900 + b"]" * 900 + b"}}", 400, "BadJsonBody"),
    ("deeply nested args", "mutation",
     b'{"path":"models:updateModel","args":{"modelId":"x","patch":{"requirements":'
     + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}}}", 400, "BadJsonBody"),
    ("bad base64 in $integer", "query",
     b'{"path":"pricing:getCreditCost","format":"convex_encoded_json","args":'
     b'{"modelId":"a","quality":"b","duration":{"$integer":"!!"}}}', 400, "BadConvexValue"),
    ("no path", "query", b'{"args":{}}', 400, "BadPath"),
    ("unknown function", "query", b'{"path":"models:dropAll","args":{}}', 404,
     "FunctionNotFound"),
    ("internal function", "mutation",
     b'{"path":"access:createToken","args":{"name":"x","scopes":["admin"]}}', 404,
     "FunctionNotFound"),
    ("wrong kind", "query", b'{"path":"models:deleteModel","args":{"modelId":"x"}}', 400,
     "WrongFunctionKind"),
    ("wrong format", "query", b'{"path":"models:getActiveModels","args":{},"format":"xml"}',
     400, "BadFormat"),
    ("two-element args array", "query", b'{"path":"models:getActiveModels","args":[{},{}]}',
     400, "BadArgs"),
    ("over 1 MiB", "mutation", b'{"path":"x","args":{"a":"' + b"x" * (1024 * 1024) + b'"}}',
     413, "PayloadTooLarge"),
]


@pytest.mark.parametrize("case,endpoint,data,status,code", TRANSPORT_ERRORS,
                         ids=[c[0] for c in TRANSPORT_ERRORS])
def test_bad_requests_are_transport_errors(seeded, client, api, case, endpoint, data, status,
                                           code):
    before = catalog_fingerprint(seeded)
    response = raw(client, endpoint, data, {"Authorization": f"Bearer {api.token}"})
    assert response.status_code == status
    assert response.get_json()["code"] == code
    assert response.get_json()["message"]
    assert catalog_fingerprint(seeded) == before


@pytest.mark.parametrize("data,words", [
    (b'{"path": "models:getActiveModels", "args": {1}}', "not valid JSON: Expecting property "
     "name enclosed in double quotes at line 1, column 45"),
    (b'{"path": "pricing:qoute", "args": {}}', "did you mean 'pricing:quote'?"),
    (b'{"path": "access:createTokn", "args": {}}', "Could not find public function "
     "'access:createTokn'"),  # no internal function is suggested to the public
])
def test_a_transport_error_says_what_to_fix(seeded, client, data, words):
    message = raw(client, "query", data).get_json()["message"]
    assert words in message and "did you mean 'access" not in message


def test_an_unknown_usage_key_is_named_with_the_known_ones(seeded, api):
    for model in ("luma/ray-2-720p", "google/veo-3"):
        refused = api.query("pricing:quote", {"modelId": model, "usage": {"input_tokens": 5}})
        assert refused["errorData"] == {"code": "INVALID_ARGUMENT", "field": "usage.input_tokens"}
        assert "unknown usage key 'input_tokens'; known: inputTokens" in refused["errorMessage"]


def test_a_compressed_body_is_refused_with_what_to_do(seeded, client, api):
    import gzip

    before = catalog_fingerprint(seeded)
    body = gzip.compress(b'{"path":"models:deleteModel","args":{"modelId":"luma/ray-2-720p"}}')
    response = raw(client, "mutation", body, {"Authorization": f"Bearer {api.token}",
                                              "Content-Encoding": "gzip"})
    assert response.status_code == 415
    assert response.get_json()["code"] == "UnsupportedContentEncoding"
    assert "uncompressed" in response.get_json()["message"]
    assert response.headers["Accept-Encoding"] == "identity"
    assert catalog_fingerprint(seeded) == before
    plain = raw(client, "query", b'{"path":"models:getActiveModels","args":{}}',
                {"Content-Encoding": "identity"})
    assert plain.status_code == 200


def test_an_anonymous_write_is_told_to_send_a_token(seeded, client):
    response = raw(client, "mutation", b'{"path":"models:deleteModel","args":{"modelId":"x"}}',
                   {})
    assert response.status_code == 401
    message = response.get_json()["message"]
    assert "Authorization: Bearer" in message and "signed-in" not in message


def test_the_host_address_leads_to_the_console(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get(response.headers["Location"]).status_code in (200, 302)


def test_an_empty_body_is_called_empty(seeded, client):
    """It had been "not valid JSON: Expecting value at line 1, column 1"."""
    for sent in (b"", b"  \r\n"):
        refused = raw(client, "query", sent)
        assert refused.status_code == 400 and refused.get_json() == {
            "code": "BadJsonBody", "message": 'The request body is empty: send a JSON object '
            '{"path": "module:function", "args": {...}}'}


def test_get_and_unknown_urls_answer_json(client):
    assert client.get("/api/query").status_code == 405
    assert client.get("/api/query").get_json()["code"] == "MethodNotAllowed"
    assert client.put("/api/query").headers["Allow"] == "POST, OPTIONS"
    assert client.post("/api/nothing").get_json()["code"] == "NotFound"


def test_convex_encoded_args_and_array_form(seeded, client):
    encoded = base64.b64encode(struct.pack("<q", 9)).decode()
    body = {"path": "pricing:getCreditCost", "format": "convex_encoded_json",
            "args": [{"modelId": RAY, "duration": {"$integer": encoded}, "quality": "high"}]}
    value = client.post("/api/query", json=body).get_json()["value"]
    assert value["duration"] == 9 and value["credits"] == 162
    nan = base64.b64encode(struct.pack("<d", float("nan"))).decode()
    body["args"][0]["duration"] = {"$float": nan}
    answer = client.post("/api/query", json=body).get_json()
    assert answer["errorData"] == {"code": "INVALID_ARGUMENT", "field": "duration"}
    body["args"][0]["duration"] = {"$bytes": "AAAA"}
    assert client.post("/api/query", json=body).status_code == 400


def test_function_endpoint_runs_either_kind(seeded, api):
    response = api.post("function", "models:getDefaultModel")
    assert response.get_json()["value"]["modelId"] == "luma/ray-flash-2-540p"
    response = api.post("function", "models:setDefaultModel", {"modelId": RAY})
    assert response.get_json()["value"]["isDefault"] is True


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "schema": "current"}


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_healthz_reports_an_unreachable_database(tmp_path, monkeypatch, database):
    """A server nobody answers at, a SQLite file in a folder that is not there: both are a
    database that is down (503 Unavailable), never a 500."""
    from tests.servers import free_port
    from wsgi import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    url = (f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
           if database == "postgresql" else f"sqlite:///{tmp_path}/no/such/folder/catalog.db")
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    query = app.test_client().post("/api/query", json={"path": "models:getActiveModels"})
    assert query.status_code == 503 and query.get_json()["code"] == "Unavailable"


HELD = [  # (URL, body): public queries whose answers are held once answered
    ("/api/query", {"path": "pricing:getCreditCost",
                    "args": {"modelId": RAY, "duration": 9, "quality": "high"}}),
    ("/api/query", {"path": "pricing:getCreditCost", "args": {"modelId": "no/such"}}),
    ("/api/function", {"path": "models:getActiveModels", "args": {}}),
    ("/api/run/models/getModelById", {"args": {"modelId": RAY}}),
]


@pytest.fixture
def held_for_a_minute(monkeypatch):
    """Held answers are also dropped every RECHECK_SECONDS: on a busy machine two requests could
    be further apart than that, and the second would rightly go to Flask."""
    monkeypatch.setattr("engine.marks.RECHECK_SECONDS", 60.0)


@pytest.fixture
def request_lines():
    from engine.observe import JsonFormatter

    lines: list[dict] = []

    class Capture(logging.Handler):
        def emit(self, record):
            line = json.loads(self.format(record))
            for varying in ("ts", "request_id", "duration_ms"):
                line.pop(varying)
            lines.append(line)

    handler = Capture()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("catalog.request")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@pytest.mark.parametrize("url,body", HELD, ids=[f"{u} {b['path'] if 'path' in b else ''}"
                                                 for u, b in HELD])
@pytest.mark.parametrize("caller", ["anonymous", "token"])
@pytest.mark.parametrize("encoding", [None, "gzip, deflate, br"])
def test_a_held_answer_is_the_answer_computed(seeded, client, make_token, request_lines,
                                              held_for_a_minute, url, body, caller, encoding):
    """One pipeline: a call never reaches Flask, and the answer held from the first call is
    delivered with the same bytes, headers and log line as the computed one."""
    from flask import request

    from wire.http import call_route

    through_flask: list[str] = []
    seeded.before_request(lambda: through_flask.append(request.path))
    headers = {"Authorization": f"Bearer {make_token('catalog:write')}"} if caller == "token" \
        else {}
    if encoding:
        headers["Accept-Encoding"] = encoding
    raw = json.dumps(body).encode()
    answers = seeded.extensions["answers"]
    assert answers.held(*call_route(url), raw) is None
    fresh = client.post(url, data=raw, content_type="application/json", headers=headers)
    assert answers.held(*call_route(url), raw) is not None  # the second is answered from memory
    held = client.post(url, data=raw, content_type="application/json", headers=headers)
    assert through_flask == []
    assert (held.status_code, held.data) == (fresh.status_code, fresh.data)
    without_id = [{k: v for k, v in r.headers.items() if k != "X-Request-Id"}
                  for r in (fresh, held)]
    assert without_id[0] == without_id[1]
    assert len(held.headers["X-Request-Id"]) == 32
    assert request_lines[0] == request_lines[1]
    assert request_lines[1]["path"] == url and request_lines[1]["status"] == 200
    chosen = client.post(url, json=body, headers={**headers, "X-Request-Id": "req-7"})
    assert chosen.headers["X-Request-Id"] == "req-7"


def test_held_answers_are_bounded_in_bytes(seeded, client, held_for_a_minute, monkeypatch):
    """Anyone can spell one request many ways (spaces): each spelling is held apart, so what a
    generation holds is bounded in bytes as well as in count, and an answer past the bound is
    still answered, computed afresh."""
    from wire.http import Answers, call_route

    body = b'{"path": "models:getActiveModels", "args": {}}'
    size = len(client.post("/api/query", data=body, content_type="application/json").data)
    monkeypatch.setattr(Answers, "LIMIT_BYTES", 3 * size)
    answers = seeded.extensions["answers"]
    spellings = [body[:-1] + b" " * i + b"}" for i in range(1, 7)]
    for raw in spellings:
        answered = client.post("/api/query", data=raw, content_type="application/json")
        assert (answered.status_code, len(answered.data)) == (200, size)
    held = [raw for raw in spellings if answers.held(*call_route("/api/query"), raw)]
    assert held == spellings[:2]  # with the first spelling's answer: three answers' bytes


def test_lines_logged_during_a_call_carry_its_request_id(seeded, client, monkeypatch):
    """What a call logs on the way (here the pipeline's own report of a bug) names the request
    it was logged in, though a call never has a Flask request context."""
    import wire.http
    from engine.observe import JsonFormatter

    def broken(*_):
        raise RuntimeError("a bug")

    monkeypatch.setattr(wire.http, "limit", broken)
    lines: list[dict] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(json.loads(JsonFormatter().format(record)))
    logger = logging.getLogger("catalog")
    logger.addHandler(handler)
    try:
        failed = client.post("/api/query", json={"path": "models:getActiveModels", "args": {}},
                             headers={"X-Request-Id": "req-42"})
    finally:
        logger.removeHandler(handler)
    assert failed.status_code == 500
    assert [line["message"] for line in lines] == ["unhandled error on /api/query", "request"]
    assert [line.get("request_id") for line in lines] == ["req-42", "req-42"]
    outside = json.loads(JsonFormatter().format(logging.makeLogRecord({"msg": "outside"})))
    assert "request_id" not in outside


def test_a_held_answer_still_checks_its_caller(seeded, client, make_token, request_lines,
                                                held_for_a_minute):
    url, body = HELD[0]
    client.post(url, json=body)  # now held
    for authorization, code in [("Bearer mc_x_unknown", "InvalidToken"),
                                ("Basic abc", "Unauthenticated")]:
        refused = client.post(url, json=body, headers={"Authorization": authorization})
        assert refused.status_code == 401 and refused.get_json()["code"] == code
        assert request_lines[-1]["outcome"] == "rejected" and request_lines[-1]["code"] == code
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 3

    def attempt():  # a new token each time: a new count
        token = make_token("catalog:write")
        return [client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
                for _ in range(4)]

    statuses = within_one_window(attempt)  # the limit's window is a fixed minute
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1].get_json()["code"] == "RateLimited"
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    assert statuses[-1].headers["X-Request-Id"]


def test_a_failure_while_answering_a_held_request_is_a_json_500(seeded, client, monkeypatch,
                                                                held_for_a_minute):
    import wire.http

    url, body = HELD[0]
    client.post(url, json=body)  # now held

    def broken(*_):
        raise RuntimeError("a bug")

    monkeypatch.setattr(wire.http, "limit", broken)
    failed = client.post(url, json=body)
    assert failed.status_code == 500
    assert failed.get_json() == {"code": "InternalError", "message": "Internal error"}


@pytest.mark.parametrize("held", [False, True], ids=["fresh", "held"])
def test_large_answers_are_gzipped_for_callers_that_accept_it(seeded, client, held):
    import gzip

    from wire.http import COMPRESS_ABOVE

    list_body = {"path": "models:getActiveModels", "args": {}}
    if held:
        client.post("/api/query", json=list_body)
    plain = client.post("/api/query", json=list_body)
    assert len(plain.data) > COMPRESS_ABOVE and "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    packed = client.post("/api/query", json=list_body,
                         headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data) / 3
    assert gzip.decompress(packed.data) == plain.data
    refused = client.post("/api/query", json=list_body, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data
    small = client.post("/api/query", json={"path": "pricing:getCreditCost", "args": {
        "modelId": RAY, "duration": 9, "quality": "high"}}, headers={"Accept-Encoding": "gzip"})
    assert len(small.data) <= COMPRESS_ABOVE
    assert "Content-Encoding" not in small.headers and "Vary" not in small.headers


def test_behind_a_proxy_held_answers_limit_the_forwarded_address(seeded, tmp_path, monkeypatch,
                                                                 held_for_a_minute):
    from wsgi import create_app

    monkeypatch.setenv("BEHIND_PROXY", "1")
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "proxied"))
    proxied = create_app({"TESTING": True, "DATABASE_URL": seeded.config["DATABASE_URL"],
                          "SECRET_KEY": "x", "RATE_LIMIT_PER_MINUTE": 2})
    try:
        client = proxied.test_client()
        url, body = HELD[0]

        def ask(address: str) -> int:
            return client.post(url, json=body, headers={"X-Forwarded-For": address}).status_code

        tries = iter(range(1, 100, 2))

        def attempt() -> list[int]:  # new addresses each time: a new count
            first = next(tries)
            return ([ask(f"203.0.113.{first}") for _ in range(3)]
                    + [ask(f"203.0.113.{first + 1}")])  # another caller behind the same proxy

        # the limit's window is a fixed minute: asked again if a minute boundary fell within
        assert within_one_window(attempt) == [200, 200, 429, 200]
    finally:
        proxied.extensions["catalog_db"].dispose()


@pytest.mark.parametrize("length", ["9" * 5000, "12abc", "-1"])
def test_a_content_length_that_is_not_a_length_is_a_400(seeded, client, held_for_a_minute,
                                                         length):
    url, body = HELD[0]
    client.post(url, json=body)  # now held: the request meets the held-answer layer first
    refused = client.post(url, data=json.dumps(body), content_type="application/json",
                          environ_overrides={"CONTENT_LENGTH": length})
    assert refused.status_code == 400 and refused.get_json()["code"] == "BadJsonBody"


def test_on_a_terminal_request_lines_are_short_text_and_static_files_are_quiet(tmp_path):
    """CATALOG_LOG_FORMAT=auto: JSON lines for a file or a pipe (production), short lines on a
    terminal; requests for static files are logged at DEBUG, so a page is one line."""
    import os
    import pty

    from engine.observe import JsonFormatter, TextFormatter, formatter, record

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal, open(tmp_path / "log", "w") as file:
        assert isinstance(formatter("auto", terminal), TextFormatter)
        assert isinstance(formatter("auto", file), JsonFormatter)
        assert isinstance(formatter("json", terminal), JsonFormatter)
        assert isinstance(formatter("text", file), TextFormatter)
    os.close(leader)

    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("catalog.request")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.DEBUG
    logger.propagate = False  # these lines are the test's: not for the process's own log
    try:
        for path in ("/admin/static/bootstrap.min.css", "/favicon.ico", "/healthz",
                     "/admin/models/", "/api/query"):
            record("rid", "GET", path, 200, 0.0012, None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = True
    assert [r.path for r in records if r.levelno >= logging.INFO] == ["/admin/models/",
                                                                      "/api/query"]
    line = TextFormatter().format(records[-1])
    assert re.fullmatch(r"\d\d:\d\d:\d\d GET /api/query 200 1\.2 ms", line)


def test_the_request_line_written_directly_is_the_line_the_formatter_makes(tmp_path):
    """In production the JSON writer alone hears request lines, and record() writes them
    without a LogRecord; the line is the one the logging path makes, field for field."""
    from engine.observe import CallNote, JsonFormatter, LineHandler, _only_writer, record

    catalog = logging.getLogger("catalog")
    saved = catalog.handlers[:], catalog.level, catalog.propagate
    with open(tmp_path / "log", "w") as stream:
        writer = LineHandler(stream)
        writer.setFormatter(JsonFormatter())
        catalog.handlers[:] = [writer]
        catalog.setLevel(logging.INFO)
        catalog.propagate = False
        try:
            assert _only_writer() is writer
            note = CallNote("pricing:quote", "error", "NO_PRICE", 'token:"quoted"')
            record("req-1", "POST", '/api/run/a"b/c', 200, 0.00123, note)
            direct = writer._queued.pop()
            listener = logging.Handler()
            listener.emit = lambda _: None
            logging.getLogger("catalog.request").addHandler(listener)
            try:
                assert _only_writer() is None  # someone else listens: the logging path
                record("req-1", "POST", '/api/run/a"b/c', 200, 0.00123, note)
            finally:
                logging.getLogger("catalog.request").removeHandler(listener)
            logged = writer._queued.pop()
        finally:
            catalog.handlers[:], catalog.level, catalog.propagate = saved
    assert direct.rstrip("\n") == json.dumps(json.loads(direct))  # json.dumps' own spelling
    direct, logged = json.loads(direct), json.loads(logged)
    assert abs(direct.pop("ts") - logged.pop("ts")) < 5
    assert list(direct.items()) == list(logged.items())
    assert direct["path"] == '/api/run/a"b/c' and direct["code"] == "NO_PRICE"


def test_the_request_line_spells_any_request_as_json_dumps_does():
    """Written out by hand for speed, the line is still json.dumps' line: no call, text to
    escape, a quiet level."""
    from engine.observe import CallNote, _request_line

    for level, call, path in [(logging.INFO, None, "/api/query\u00e9\n\t\\"),
                              (logging.DEBUG, CallNote("m:f", "error", None, "token:\u2603"),
                               "/healthz")]:
        line = _request_line(level, "rid", "GET", path, 404, 12.5, call)
        parsed = json.loads(line)
        assert line == json.dumps(parsed)
        assert parsed["path"] == path and parsed["status"] == 404
        assert parsed["level"] == logging.getLevelName(level).lower()
        assert parsed["function"] == (call and call.function)


def test_a_plain_request_to_the_sync_url_is_told_it_takes_a_websocket(client):
    """As the README says: 400 BadWebSocketHandshake (it was Werkzeug's generic BadRequest)."""
    for path in ("/api/sync", "/api/1.31.0/sync"):
        answer = client.get(path)
        assert answer.status_code == 400
        assert answer.json["code"] == "BadWebSocketHandshake"
        assert "Upgrade: websocket" in answer.json["message"]
    upgrade = client.get("/admin/", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert (upgrade.status_code, upgrade.json["code"]) == (400, "BadWebSocketHandshake")
    assert "/api/sync" in upgrade.json["message"]
