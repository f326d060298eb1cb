"""Property-based fuzzing of the sync protocol (Hypothesis), against the app on a real server.

Every message type a client may send (Connect, ModifyQuerySet, Mutation, Action, Authenticate,
Event) and garbage, with hostile values in every field. Whatever a session is sent, the server
answers only with protocol messages (never an HTTP 500 on the upgraded socket), logs no error,
keeps serving, and changes the catalog or its statistics only for a caller allowed to.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_websocket import ConnectionClosed

import functions  # noqa: F401 - declares the functions
from engine.runtime import REGISTRY
from tests.conftest import catalog_fingerprint, run_as_system
from tests.sync_client import QUOTE, SyncClient

SERVER_TYPES = {"Transition", "MutationResponse", "ActionResponse", "AuthError", "FatalError",
                "Ping"}
PROBE = 4_294_967_295  # the last request id: its answer means every earlier message was read

# Ids and versions: json.dumps writes float("nan") and infinities as NaN and Infinity.
ints = st.one_of(st.integers(-3, 3), st.integers(), st.just(2**32 - 1), st.just(2**32),
                 st.floats(), st.sampled_from([math.nan, math.inf, -math.inf]), st.booleans(),
                 st.none(), st.text(max_size=3))
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                      st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def encoded(value: int | float) -> dict:
    if isinstance(value, int):
        return {"$integer": base64.b64encode(struct.pack("<q", value)).decode()}
    return {"$float": base64.b64encode(struct.pack("<d", value)).decode()}


convex_values = st.one_of(
    json_values,
    st.integers(-2**63, 2**63 - 1).map(encoded),
    st.floats().map(encoded),
    st.sampled_from([{"$integer": "!!"}, {"$integer": "AAAA"}, {"$bytes": "AA=="},
                     {"$float": 1}, {"$set": []}, {"$a": 1, "b": 2}]),
    st.integers(30, 5000).map(lambda depth: f"\u2063deep{depth}\u2063"),  # see deepen()
)


def deepen(text: str) -> str:
    """Messages as JSON text, with each deep marker made an array nested that deep (too deep
    for Python to build as a value)."""
    return re.sub(r'"\\u2063deep(\d+)\\u2063"',
                  lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)
paths = st.one_of(st.sampled_from(sorted(REGISTRY)), st.sampled_from(
    ["pricing.js:getCreditCost", "models", "models:", ":x", "", "a" * 300]), st.text(max_size=30))
model_args = st.fixed_dictionaries({}, optional={
    "modelId": st.one_of(st.sampled_from(["luma/ray-2-720p", "google/veo-3", "nope"]),
                         convex_values),
    "duration": st.one_of(st.sampled_from([5, 9]), convex_values),
    "quality": st.one_of(st.sampled_from(["high", "standard"]), convex_values),
    "patch": st.one_of(st.fixed_dictionaries({}, optional={
        "costPerSecond": st.one_of(st.floats(), convex_values),
        "description": st.text(max_size=50), "isActive": st.booleans()}), convex_values),
    "generationTime": st.one_of(st.floats(), convex_values),
    "success": st.booleans(),
    "paginationOpts": st.one_of(st.fixed_dictionaries(
        {"numItems": st.integers(-5, 2000), "cursor": st.one_of(st.none(), st.text())}),
        convex_values),
})
args = st.one_of(st.lists(model_args, min_size=1, max_size=1), st.lists(model_args, max_size=3),
                 convex_values)


def message(kind: str, **fields) -> st.SearchStrategy:
    return st.fixed_dictionaries({"type": st.just(kind), **fields})


def tokens(valid: list[str]) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(valid), st.text(max_size=60),
                     st.from_regex(r"mc_[0-9a-f]{8}_[A-Za-z0-9_-]{1,43}", fullmatch=True),
                     convex_values)


def messages(valid_tokens: list[str]) -> st.SearchStrategy:
    versions = st.one_of(st.integers(0, 3), ints)
    modifications = st.lists(st.one_of(
        st.fixed_dictionaries({"type": st.just("Add"), "queryId": ints, "udfPath": paths,
                               "args": args},
                              optional={"journal": json_values, "componentPath": json_values}),
        st.fixed_dictionaries({"type": st.just("Remove"), "queryId": ints}),
        json_values), max_size=4)
    structured = st.one_of(
        message("Connect", sessionId=st.text(max_size=40), connectionCount=ints,
                maxObservedTimestamp=st.one_of(st.integers(0, 2**64 - 1).map(
                    lambda ts: base64.b64encode(struct.pack("<Q", ts)).decode()),
                    json_values), lastCloseReason=json_values, clientTs=ints),
        message("ModifyQuerySet", baseVersion=versions, newVersion=versions,
                modifications=st.one_of(modifications, json_values)),
        message("Mutation", requestId=ints, udfPath=paths, args=args),
        message("Action", requestId=ints, udfPath=paths, args=args),
        message("Authenticate", baseVersion=versions,
                tokenType=st.one_of(st.sampled_from(["User", "None", "Admin"]), json_values),
                value=tokens(valid_tokens)),
        message("Event", eventType=st.one_of(st.text(max_size=20), json_values),
                event=json_values),
    ).map(lambda m: deepen(json.dumps(m)))
    garbage = st.one_of(
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.sampled_from(['{"type": "Mutation", "requestId": NaN, "udfPath": "x", "args": [{}]}',
                         '{"type": NaN}', '{"type": "Connect", "clientTs": Infinity}',
                         "[" * 5000 + "]" * 5000, '{"type": "__init__"}', '{"type": "_id"}']),
        st.binary(max_size=100),
    )
    return st.lists(st.one_of(structured, structured, garbage), min_size=1, max_size=6)


def play(url: str, sent: list) -> list[dict]:
    """Send the messages, then a probe, and return what the server answered until the probe's
    answer (everything was read) or the end of the session."""
    client = SyncClient(url)
    answers = []
    try:
        try:
            for raw in [*sent, {"type": "Action", "requestId": PROBE, "udfPath": "x",
                                "args": [{}]}]:
                client.send(raw)
        except (ConnectionClosed, OSError):
            pass  # the server ended the session already: read what it said before
        while True:
            answer = client.receive(timeout=30, pings=True)
            answers.append(answer)
            if answer["type"] == "ActionResponse" and answer["requestId"] == PROBE:
                break
    except ConnectionClosed:
        pass  # the session ended (FatalError, AuthError) before the probe
    finally:
        client.close()
    return answers


def check(answers: list[dict]) -> None:
    for answer in answers:
        assert answer["type"] in SERVER_TYPES, answer


FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture
def fuzzed(seeded, live_server, make_token):
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 0  # the probe and the fuzz are not limited
    revoked = make_token("catalog:write", "stats:write", "admin", name="revoked")
    run_as_system(seeded, "access:revokeToken", {"name": "revoked"})
    return revoked


@pytest.mark.sweep
def test_no_message_gets_a_500_or_changes_the_catalog_without_rights(
        seeded, live_server, fuzzed, errors_logged):
    before = catalog_fingerprint(seeded)

    @FUZZ
    @given(sent=messages([fuzzed, "mc_00000000_nope"]))
    def anonymous_or_refused(sent):
        check(play(live_server.url, sent))
        assert not errors_logged, errors_logged[0].getMessage()

    anonymous_or_refused()
    assert catalog_fingerprint(seeded) == before
    assert live_server_answers(live_server)


@pytest.mark.sweep
def test_a_statistics_token_changes_no_configuration(seeded, live_server, fuzzed, make_token,
                                                     errors_logged):
    stats_only = make_token("stats:write")
    before = catalog_fingerprint(seeded)

    @FUZZ
    @given(sent=messages([stats_only]))
    def as_a_statistics_writer(sent):
        check(play(live_server.url, sent))
        assert not errors_logged, errors_logged[0].getMessage()

    as_a_statistics_writer()
    after = catalog_fingerprint(seeded)
    for table in ("models", "model_history", "catalog_state"):
        assert after[table] == before[table]
    assert live_server_answers(live_server)


def live_server_answers(server) -> bool:
    client = SyncClient(server.url)
    try:
        client.connect()
        return client.subscribe(0, "pricing:getCreditCost", QUOTE)["value"]["credits"] == 162
    finally:
        client.close()
