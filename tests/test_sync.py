"""A live session is held to the rules of the HTTP API: identity checked on every call, rate
limits, bounded subscriptions; and it runs a query again only when its result can change."""

from __future__ import annotations

import base64
import json
import struct
import time

import pytest
from simple_websocket import ConnectionClosed
from sqlalchemy import create_engine, text

from tests.conftest import (
    catalog_fingerprint,
    run_as_system,
    single_lookups,
    token_lookups,
    within_one_window,
)
from tests.sync_client import QUOTE, SyncClient

RAY = "luma/ray-2-720p"


@pytest.fixture
def session(seeded, live_server):
    clients: list[SyncClient] = []

    def open_session(**kw) -> SyncClient:
        client = SyncClient(live_server.url, **kw)
        client.connect()
        clients.append(client)
        return client

    yield open_session
    for client in clients:
        client.close()


def describe(token_name: str):
    return {"modelId": RAY, "patch": {"description": f"edited with {token_name}"}}


# -- identity ---------------------------------------------------------------------------------


def test_a_revoked_token_ends_the_session_with_an_auth_error(seeded, session, make_token):
    token = make_token("catalog:write", name="doomed")
    live = session()
    assert live.authenticate(token)["type"] == "Transition"
    assert live.mutation("models:updateModel", describe("doomed"))["success"] is True

    run_as_system(seeded, "access:revokeToken", {"name": "doomed"})
    live.send({"type": "Mutation", "requestId": 2, "udfPath": "models:updateModel",
               "args": [{"modelId": RAY, "patch": {"costPerSecond": 0.5}}]})
    told = [m for m in live.closed() if m["type"] != "Transition"]  # (the write's own)
    assert [m["type"] for m in told] == ["AuthError"]
    assert told[0]["authUpdateAttempted"] is False and told[0]["baseVersion"] == 1
    assert "InvalidToken" in told[0]["error"]
    assert run_as_system(seeded, "models:getModelById", {"modelId": RAY})["costPerSecond"] == 0.18


def test_a_revocation_is_told_to_a_quiet_session(seeded, session, make_token):
    token = make_token("catalog:write", name="quiet")
    live = session()
    live.subscribe(0, "models:getDefaultModel")
    assert live.authenticate(token)["type"] == "Transition"
    run_as_system(seeded, "access:revokeToken", {"name": "quiet"})
    assert [m["type"] for m in live.closed()] == ["AuthError"]


@pytest.mark.waits
def test_an_expired_token_is_refused_on_the_next_call(seeded, session, make_token, client):
    token = make_token("catalog:write", name="brief")
    live = session()
    assert live.authenticate(token)["type"] == "Transition"
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.begin() as conn:  # once authenticated: it expires a second from now
        conn.execute(text("UPDATE api_tokens SET expires_at = :at WHERE name = 'brief'"),
                     {"at": int(time.time() * 1000) + 1000})
    engine.dispose()
    deadline = time.monotonic() + 25
    while client.post("/api/query", json={"path": "models:getDefaultModel"},
                      headers={"Authorization": f"Bearer {token}"}).status_code != 401:
        assert time.monotonic() < deadline, "the token never expired over HTTP"
        time.sleep(0.05)
    answer = live.mutation("models:updateModel", describe("brief"))
    assert answer["type"] == "AuthError" and answer["authUpdateAttempted"] is False


def test_a_bad_token_after_a_good_one_drops_the_identity(seeded, session, make_token):
    token = make_token("catalog:write")
    live = session()
    assert live.authenticate(token)["type"] == "Transition"
    refused = live.authenticate("mc_00000000_not-a-token")
    assert refused["type"] == "AuthError" and refused["authUpdateAttempted"] is True
    assert refused["baseVersion"] == 1  # the client's attempt from identity version 1
    before = catalog_fingerprint(seeded)
    try:
        live.send({"type": "Mutation", "requestId": 9, "udfPath": "models:updateModel",
                   "args": [describe("nobody")]})
        assert all(m.get("success") is not True for m in live.closed())
    except (ConnectionClosed, OSError):
        pass  # closed before the mutation could be sent: it was not run either
    assert catalog_fingerprint(seeded) == before


def test_admin_keys_are_refused_with_an_auth_error(session):
    live = session()
    live.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": "x"})
    answer = live.until(lambda m: m["type"] in ("AuthError", "Transition"))
    assert answer["type"] == "AuthError" and "Admin keys" in answer["error"]


def test_a_query_sent_as_a_mutation_says_what_to_send_on_a_socket_too(session):
    """The refusal names the call a client makes, not only the HTTP URL."""
    answer = session().mutation("models:getActiveModels", {})
    assert answer["success"] is False
    assert answer["result"] == ("WrongFunctionKind: models:getActiveModels is a query: call it "
                                "as a query (over HTTP: POST /api/query)")


# -- rate limits ------------------------------------------------------------------------------


def test_socket_calls_count_against_the_api_rate_limit(seeded, session, make_token, client):
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 6

    def attempt():
        token = make_token("catalog:write")
        http = [client.post("/api/mutation", json={"path": "models:updateModel",
                                                   "args": describe("http")},
                            headers={"Authorization": f"Bearer {token}"}).status_code
                for _ in range(2)]
        live = session()
        live.authenticate(token)  # a call too
        answers = [live.mutation("models:updateModel", describe("socket")) for _ in range(2)]
        subscribed = live.subscribe(1, "models:getDefaultModel")
        refused = live.mutation("models:updateModel", describe("socket"))
        return http, answers, subscribed, refused

    http, answers, subscribed, refused = within_one_window(attempt)
    assert http == [200, 200]
    assert [a["success"] for a in answers] == [True, True]
    assert subscribed["type"] == "QueryUpdated"  # the 6th call of the minute
    assert refused["success"] is False and refused["result"].startswith("RateLimited")


def test_subscriptions_count_against_the_rate_limit(seeded, session):
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 3

    def attempt():
        live = session()
        return live.modify(*[{"type": "Add", "queryId": i, "udfPath": "models:getDefaultModel",
                              "args": [{}]} for i in range(5)])["modifications"]

    added = within_one_window(attempt)
    assert [m["type"] for m in added] == ["QueryUpdated"] * 3 + ["QueryFailed"] * 2
    assert added[3]["errorMessage"].startswith("RateLimited")


def recommend(n: int) -> dict:
    return {"contentType": "chat", "usage": {"inputTokens": 1000 + n}}


def test_a_subscription_weighs_against_the_rate_limit_as_its_call_would(seeded, session, api):
    """A recommendation over 40 models weighs 3 calls (functions/recommend.py) over the socket
    as over HTTP, when it is computed for the subscriber: a second subscription to the same
    one is one call. So its subscriptions are held back after the 4th, not the 10th."""
    from tests.test_recommend import many_chat_models

    many_chat_models(api, 40)
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 10

    def attempt() -> list[dict]:
        live = session()
        return [live.subscribe(query_id, "models:recommendModel", recommend(n))
                for query_id, n in enumerate([0, 0, 0, 0, 1, 2, 3])]

    # 3, then one each while held (4, 5, 6), 9, 12: the 7th is past 10 (weighed each time,
    # the 5th would have been)
    answers = within_one_window(attempt)
    assert [a["type"] for a in answers] == ["QueryUpdated"] * 6 + ["QueryFailed"]
    assert answers[-1]["errorMessage"].startswith("RateLimited")


def test_a_subscription_holds_as_many_places_as_it_weighs(seeded, session, api):
    """Changes run a subscription again, for free: so an address's subscriptions are bounded
    by what they weigh (SYNC_QUERIES_PER_ADDRESS), and a heavy one is given back whole."""
    from tests.test_recommend import many_chat_models

    many_chat_models(api, 40)  # a recommendation weighs 3
    seeded.config["SYNC_QUERIES_PER_ADDRESS"] = 6
    live = session()
    assert live.subscribe(0, "models:recommendModel", recommend(0))["type"] == "QueryUpdated"
    assert live.subscribe(1, "models:getDefaultModel")["type"] == "QueryUpdated"
    refused = live.subscribe(2, "models:recommendModel", recommend(2))  # 3 + 1 + 3 > 6
    assert refused["type"] == "QueryFailed"
    assert refused["errorMessage"].startswith("TooManyQueries") and "counts as 3" in (
        refused["errorMessage"])
    live.modify({"type": "Remove", "queryId": 0})  # 3 places back: 1 held
    assert live.subscribe(3, "models:recommendModel", recommend(3))["type"] == "QueryUpdated"
    live.modify({"type": "Remove", "queryId": 1})
    assert live.subscribe(4, "models:recommendModel", recommend(4))["type"] == "QueryUpdated"
    assert live.subscribe(5, "models:getDefaultModel")["type"] == "QueryFailed"  # 3 + 3


def test_authenticating_again_counts_against_the_rate_limit(seeded, session, make_token):
    """Flipping a session's token runs its signed-in queries again: each Authenticate, and
    each query it runs again, is a call (they had been free: a loop of flips re-ran every
    signed-in query of the session without limit). Past the limit: AuthError, the session
    ends, as for a refused token."""
    token = make_token("admin")
    seeded.config["RATE_LIMIT_PER_MINUTE"] = 6

    def attempt():  # the token's calls of the minute, and the address's (anonymous)
        live = session()
        first = live.authenticate(token)  # token 1
        live.subscribe(1, "access:listTokens")  # a signed-in query: token 2
        flips = [live.authenticate(None),  # address 1, and 2 for the query run again
                 live.authenticate(token),  # token 3 and 4
                 live.authenticate(token)]  # token 5: the same caller, nothing run again
        more = [live.authenticate(None),  # address 3 and 4
                live.authenticate(token)]  # token 6 and 7: past 6
        return first, flips, more

    first, flips, more = within_one_window(attempt)
    assert first["type"] == "Transition"
    assert [f["type"] for f in flips] == ["Transition"] * 3
    assert more[0]["type"] == "Transition"
    assert more[1]["type"] == "AuthError" and more[1]["error"].startswith("RateLimited"), more


def test_refused_tokens_are_limited_per_address_over_sockets(seeded, session, make_token):
    seeded.config["INVALID_TOKENS_PER_MINUTE"] = 2
    valid = make_token("catalog:write")

    def attempt():
        seen, stop = token_lookups()
        try:
            answers = [session().authenticate(f"mc_deadbeef_guess{i}") for i in range(4)]
        finally:
            stop()
        return answers, seen, session().authenticate(valid)

    answers, seen, beside = within_one_window(attempt)
    assert all(a["type"] == "AuthError" for a in answers)
    assert ["InvalidToken" in a["error"] for a in answers] == [True, True, False, False]
    assert all("RateLimited" in a["error"] for a in answers[2:])
    assert len(single_lookups(seen)) == 2  # the address past its limit costs no lookup
    assert beside["type"] == "Transition", beside  # a valid token from the same address


def test_a_token_that_is_not_text_is_refused_as_any_bad_token(seeded, session):
    """A lone surrogate (not encodable) or a NUL (which PostgreSQL refuses in a parameter) is
    an unknown token, counted against the address: not an internal error, not 'the database
    is unavailable'."""
    seeded.config["INVALID_TOKENS_PER_MINUTE"] = 2

    def attempt():
        return [session().authenticate(value)
                for value in ("mc_ab_\ud800", "mc_\u0000_x", "mc_ab\ud800_x")]

    answers = within_one_window(attempt)
    assert [a["type"] for a in answers] == ["AuthError"] * 3, answers
    assert ["InvalidToken" in a["error"] for a in answers] == [True, True, False]
    assert "RateLimited" in answers[2]["error"]  # each was counted


# -- bounded subscriptions --------------------------------------------------------------------


def test_a_session_subscribes_to_a_bounded_number_of_queries(seeded, session):
    seeded.config["SYNC_MAX_QUERIES"] = 3
    live = session()
    added = live.modify(*[{"type": "Add", "queryId": i, "udfPath": "models:getModelById",
                           "args": [{"modelId": f"model-{i}"}]} for i in range(5)])
    kinds = [m["type"] for m in added["modifications"]]
    assert kinds == ["QueryUpdated"] * 3 + ["QueryFailed"] * 2
    assert "at most 3 queries" in added["modifications"][4]["errorMessage"]
    live.modify({"type": "Remove", "queryId": 0})
    assert live.subscribe(7, "models:getDefaultModel")["type"] == "QueryUpdated"


def test_an_address_subscribes_to_a_bounded_number_of_queries_across_its_sockets(seeded,
                                                                                 session):
    """Each subscription with arguments of its own is run again when statistics move, so one
    address's subscriptions on a worker are bounded, whatever sockets hold them; a removed
    query or a closed socket gives its place back."""
    seeded.config["SYNC_QUERIES_PER_ADDRESS"] = 3

    def add(query_id: int) -> dict:
        return {"type": "Add", "queryId": query_id, "udfPath": "models:getModelById",
                "args": [{"modelId": f"model-{query_id}"}]}

    first, second = session(), session()
    assert [m["type"] for m in first.modify(add(0), add(1))["modifications"]] == [
        "QueryUpdated", "QueryUpdated"]
    refused = second.modify(add(0), add(1))["modifications"]
    assert [m["type"] for m in refused] == ["QueryUpdated", "QueryFailed"]
    assert refused[1]["errorMessage"].startswith("TooManyQueries: an address subscribes to at "
                                                 "most 3 queries on a worker")
    first.modify({"type": "Remove", "queryId": 0})
    assert second.modify(add(2))["modifications"][0]["type"] == "QueryUpdated"
    first.close()  # its one query's place comes back once the server sees the socket closed
    third, deadline, query_id = session(), time.monotonic() + 10, 0
    while third.modify(add(query_id))["modifications"][0]["type"] != "QueryUpdated":
        assert time.monotonic() < deadline, "a closed socket's queries were never given back"
        query_id += 1
        time.sleep(0.01)
    refused = third.modify(add(query_id + 1))["modifications"][0]
    assert refused["type"] == "QueryFailed" and "TooManyQueries" in refused["errorMessage"]


def test_a_session_subscribes_to_results_of_bounded_size(seeded, session):
    quote = json.dumps(run_as_system(seeded, "pricing:getCreditCost", QUOTE))
    seeded.config["SYNC_MAX_RESULT_BYTES"] = 4 * len(quote)  # room for a few quotes
    live = session()
    assert live.subscribe(0, "pricing:getCreditCost", QUOTE)["type"] == "QueryUpdated"
    refused = live.subscribe(1, "models:getActiveModels")  # three whole models: too large
    assert refused["type"] == "QueryFailed"
    assert refused["errorMessage"].startswith("SubscriptionsTooLarge")
    assert live.subscribe(2, "pricing:getCreditCost", {**QUOTE, "duration": 5})[
        "type"] == "QueryUpdated"


def test_a_subscriptions_arguments_count_against_the_bound(seeded, session, errors_logged):
    """Arguments are held as long as the subscription, refused or not: large ones are refused
    before they are kept. A message is bounded in UTF-8 bytes, not in characters."""
    seeded.config["SYNC_MAX_RESULT_BYTES"] = 64 * 1024
    live = session()
    refused = live.subscribe(0, "models:getModelsByProvider", {"provider": "x" * 70_000})
    assert refused["type"] == "QueryFailed"
    assert refused["errorMessage"].startswith("SubscriptionsTooLarge"), refused
    assert live.subscribe(1, "pricing:getCreditCost", QUOTE)["type"] == "QueryUpdated"
    live.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": live.query_set,
                          "newVersion": live.query_set + 1, "modifications": [
                              {"type": "Add", "queryId": 2,
                               "udfPath": "models:getModelsByProvider",
                               "args": [{"provider": "\U0001F600" * 300_000}]}]},
                         ensure_ascii=False))  # 300,000 characters, 1.2 MB in UTF-8
    answers = live.closed()
    assert answers[-1]["type"] == "FatalError" and "too large" in answers[-1]["error"]
    assert not errors_logged


def test_what_a_subscription_is_admitted_with_it_keeps_at_the_next_refresh(seeded, session):
    """At the least bound a query is admitted under (its arguments and result both counted),
    a change that alters nothing of it keeps it: admission counts as every refresh does."""
    def admitted(bound: int, keep: bool = False):
        seeded.config["SYNC_MAX_RESULT_BYTES"] = bound
        live = session()
        ok = live.subscribe(0, "pricing:getCreditCost", QUOTE)["type"] == "QueryUpdated"
        if keep:
            return live
        live.close()  # (an address holds a few sockets at most)
        return ok

    low, high = 1, 4096  # admitted at high, not at low
    assert admitted(high) and not admitted(low)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if admitted(middle) else (middle, high)
    live = admitted(high, keep=True)
    live.send({"type": "Mutation", "requestId": 0, "udfPath": "models:createModel",
               "args": [{}]})  # refused (no token); every result is measured again after it
    live.until(lambda m: m["type"] == "MutationResponse")
    after = live.until(lambda m: m["type"] == "Transition")
    assert after["modifications"] == [], "admitted, then dropped at the next refresh"


def test_a_result_that_grows_past_the_bound_is_dropped(seeded, session, api):
    models = json.dumps(run_as_system(seeded, "models:getActiveModels"))
    seeded.config["SYNC_MAX_RESULT_BYTES"] = len(models) + 300
    live = session()
    assert live.subscribe(0, "models:getActiveModels")["type"] == "QueryUpdated"
    api.mutation("models:updateModel", {"modelId": RAY, "patch": {"description": "x" * 1000}})
    dropped = live.until(lambda m: m["type"] == "Transition" and m["modifications"])
    assert dropped["modifications"][0]["type"] == "QueryFailed"
    live.subscribe(1, "models:getDefaultModel")  # the session goes on, without query 0
    api.mutation("models:updateModel", {"modelId": "luma/ray-flash-2-540p",
                                        "patch": {"description": "new words"}})
    pushed = live.until(lambda m: m["type"] == "Transition" and m["modifications"])
    assert [m["queryId"] for m in pushed["modifications"]] == [1]


# -- what runs again after a change -----------------------------------------------------------


def test_a_change_runs_each_query_once_per_worker_and_only_if_it_can_change(
        seeded, session, live_server, api):
    live = live_server.app.extensions["live_results"]
    sessions = [session() for _ in range(4)]
    for s in sessions:
        s.subscribe(0, "pricing:getCreditCost", QUOTE)  # reads the configuration only
        s.subscribe(1, "models:getActiveModels")  # reads statistics too
    quote_key, models_key = ("public", "pricing:getCreditCost", json.dumps(
        QUOTE, sort_keys=True, separators=(",", ":"))), ("public", "models:getActiveModels", "{}")
    assert live.computed[quote_key] == 1 and live.computed[models_key] == 1

    api.mutation("models:updateModelStats",
                 {"modelId": RAY, "generationTime": 30, "success": True})
    for s in sessions:
        s.until(lambda m: m["type"] == "Transition" and m["modifications"])
    assert live.computed[quote_key] == 1  # a statistics write cannot change a quote
    # once per session would be 4; the writer's mark and the watcher's notice may be two runs
    assert 2 <= live.computed[models_key] <= 3

    api.mutation("models:updateModel", {"modelId": RAY, "patch": {"costPerSecond": 0.2}})
    for s in sessions:
        pushed = s.until(lambda m: m["type"] == "Transition" and any(
            x["queryId"] == 0 for x in m["modifications"]))
        quote = next(x for x in pushed["modifications"] if x["queryId"] == 0)
        assert quote["value"]["credits"] == 180
    assert 2 <= live.computed[quote_key] <= 3


def test_a_quote_priced_now_is_sent_again_only_when_its_price_changes(seeded, session, api):
    """A quote without `at` answers the moment it priced at: another model's change runs it
    again (the catalog moved), but an answer that differs in `at` alone is not sent. So for a
    recommendation, whose quote has one."""
    client = session()
    ask = {"modelId": RAY, "usage": {"seconds": 9}, "options": {"quality": "high"}}
    first = client.subscribe(0, "pricing:quote", ask)
    assert first["value"]["credits"] == 162
    client.subscribe(1, "models:getModelById", {"modelId": "luma/ray-flash-2-540p"})
    recommended = client.subscribe(2, "models:recommendModel", {
        "contentType": "video", "usage": {"seconds": 9}, "options": {"quality": "high"}})
    assert recommended["value"]["modelId"] == "luma/ray-flash-2-540p"  # cheaper than Ray
    for description in ("once", "twice"):
        api.mutation("models:updateModel", {"modelId": "luma/ray-flash-2-540p",
                                            "patch": {"description": description}})
        pushed = client.until(lambda m: m["type"] == "Transition" and m["modifications"])
        assert [m["queryId"] for m in pushed["modifications"]] == [1]
    api.mutation("models:updateModel", {"modelId": RAY, "patch": {"costPerSecond": 0.2}})
    pushed = client.until(lambda m: m["type"] == "Transition" and m["modifications"])
    (quote,) = pushed["modifications"]
    assert quote["queryId"] == 0 and quote["value"]["credits"] == 180
    assert quote["value"]["at"] > first["value"]["at"]


def test_a_number_a_double_does_not_hold_is_no_other_subscriptions_key(seeded, session):
    """Sessions share the result of a query asked with the same arguments. 9.0000000000000000001
    seconds is read as the double 9.0, but it is not what another session asked with 9.0: it
    is refused for its digits, not answered with the other's quote."""
    exact = session().subscribe(0, "pricing:quote", {
        "modelId": RAY, "usage": {"seconds": 9.0}, "options": {"quality": "high"}})
    assert exact["type"] == "QueryUpdated" and exact["value"]["credits"] == 162
    other = session()
    other.send('{"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": '
               '[{"type": "Add", "queryId": 0, "udfPath": "pricing:quote", "args": [{"modelId":'
               f' "{RAY}", "usage": {{"seconds": 9.0000000000000000001}}, "options": '
               '{"quality": "high"}}]}]}')
    (failed,) = other.until(lambda m: m["type"] == "Transition")["modifications"]
    assert failed["type"] == "QueryFailed"
    assert failed["errorData"] == {"code": "INVALID_ARGUMENT", "field": "usage.seconds"}


def test_statistics_alone_run_a_sessions_queries_at_most_once_a_while(
        seeded, session, live_server, api, monkeypatch):
    """Every recorded generation moves the statistics: a session runs its queries again for
    them at most every STATS_REFRESH_SECONDS (here: never again within the test), while a
    catalog change is sent at once, with the statistics as they are by then."""
    monkeypatch.setattr("wire.sync.STATS_REFRESH_SECONDS", 3600.0)
    live = live_server.app.extensions["live_results"]
    client = session()
    args = {"paginationOpts": {"numItems": 10, "cursor": None}, "search": "ray"}
    key = ("public", "models:listModels", json.dumps(args, sort_keys=True,
                                                      separators=(",", ":")))
    assert client.subscribe(0, "models:listModels", args)["type"] == "QueryUpdated"
    stats = {"modelId": RAY, "generationTime": 30, "success": True}
    api.mutation("models:updateModelStats", stats)  # the first: sent at once
    client.until(lambda m: m["type"] == "Transition" and m["modifications"])
    runs = live.computed[key]
    for _ in range(20):
        api.mutation("models:updateModelStats", stats)
        api.query("models:getModelStats")  # a read between: the session has time to wake
    api.mutation("models:updateModel", {"modelId": RAY, "patch": {"description": "now"}})
    sent = []  # every change sent, until the catalog's
    pushed = client.until(lambda m: m["type"] == "Transition" and m["modifications"]
                          and not sent.append(m) and "now" in json.dumps(m))
    assert len(sent) == 1, [json.dumps(m)[:200] for m in sent]
    page = pushed["modifications"][0]["value"]["page"]
    ray = next(m for m in page if m["modelId"] == RAY)
    assert ray["description"] == "now" and ray["totalGenerations"] == 21
    # for the catalog change, not once per recording (20); on PostgreSQL the writer's own mark
    # and the fleet's notice of it may wake the session apart: two runs at most there
    apart = seeded.extensions["catalog_db"].engine.dialect.name == "postgresql"
    assert runs + 1 <= live.computed[key] <= runs + 1 + apart


# -- hostile messages -------------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    '{"type": "Mutation", "requestId": NaN, "udfPath": "models:getActiveModels", "args": [{}]}',
    '{"type": "Mutation", "requestId": Infinity, "udfPath": "x", "args": [{}]}',
    '{"type": "Mutation", "requestId": -1, "udfPath": "x", "args": [{}]}',
    '{"type": "Mutation", "requestId": 1e400, "udfPath": "x", "args": [{}]}',
    '{"type": "Mutation", "requestId": 1, "udfPath": "x", "args": [{"a": 1e-' + "9" * 20
    + "}]}",  # an exponent no decimal holds (it ended the session as a fault of ours)
    '{"type": "Mutation", "requestId": 1, "udfPath": "x", "args": ' + "[" * 5000
    + "]" * 5000 + "}",
    '{"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": '
    '[{"type": "Add", "queryId": 0, "udfPath": "models:getModelById", "args": '
    '[{"modelId": ' + "[" * 900 + "]" * 900 + "}]}]}",
])
def test_hostile_numbers_and_nesting_end_in_a_fatal_error(seeded, session, message,
                                                        errors_logged):
    live = session()
    live.send(message)
    answers = live.closed()
    assert answers and answers[-1]["type"] == "FatalError"
    assert not errors_logged


def test_a_timestamp_past_any_the_server_gives_ends_in_a_fatal_error(session, errors_logged):
    """A client that claims to have seen 2^64 - 1 would overflow the next transition's ts."""
    live = session()
    live.send({"type": "Connect", "sessionId": "00000000-0000-0000-0000-000000000000",
               "connectionCount": 1, "lastCloseReason": "x", "clientTs": 0,
               "maxObservedTimestamp": base64.b64encode(struct.pack("<Q", 2**64 - 1)).decode()})
    answers = live.closed()
    assert answers[-1]["type"] == "FatalError"
    assert "maxObservedTimestamp" in answers[-1]["error"]
    assert not errors_logged


def test_a_mutation_first_keeps_the_timestamps_past_what_the_client_saw(session):
    """A reconnecting client that saw a timestamp a minute ahead, then sends a mutation before
    anything else: its answer and the transition after it are not older."""
    live = session(path="/api/sync")
    seen = time.time_ns() + 60 * 10**9
    live.send({"type": "Connect", "sessionId": "00000000-0000-0000-0000-000000000001",
               "connectionCount": 1, "lastCloseReason": "x", "clientTs": 0,
               "maxObservedTimestamp": base64.b64encode(struct.pack("<Q", seen)).decode()})
    live.send({"type": "Mutation", "requestId": 0, "udfPath": "models:createModel",
               "args": [{}]})  # refused (no token): it answers a ts all the same
    answer = live.until(lambda m: m["type"] == "MutationResponse")
    transition = live.until(lambda m: m["type"] == "Transition")
    for ts in (answer["ts"], transition["endVersion"]["ts"]):
        assert struct.unpack("<Q", base64.b64decode(ts))[0] >= seen


def test_convex_encoded_and_canonical_paths_over_the_socket(session):
    live = session()
    bigint = {"$integer": "CQAAAAAAAAA="}  # 9, as the JS client sends a BigInt
    quote = live.subscribe(0, "pricing.js:getCreditCost", {**QUOTE, "duration": bigint})
    assert quote["type"] == "QueryUpdated" and quote["value"]["credits"] == 162
    bad = live.subscribe(1, "pricing:getCreditCost", {**QUOTE, "duration": {"$integer": "!"}})
    assert bad["type"] == "QueryFailed" and bad["errorMessage"].startswith("BadConvexValue")


@pytest.mark.waits
def test_a_subscription_refused_for_want_of_a_price_gets_it_when_it_starts(seeded, session,
                                                                           api):
    """NO_PRICE until a model's first price starts, then the price: pushed to the subscriber
    at that moment, with no write then."""
    start = int(time.time() * 1000) + 5000
    api.value("mutation", "models:createModel", {
        "modelId": "acme/later", "name": "Later", "provider": "Acme", "contentType": "chat",
        "isActive": True, "prices": [{"effectiveFrom": start, "components": [
            {"unit": "input_tokens", "price": "1"}]}]})
    client = session()
    ask = {"modelId": "acme/later", "usage": {"inputTokens": 1_000_000}}
    first = client.subscribe(0, "pricing:quote", ask)
    assert first["type"] == "QueryFailed" and first["errorData"]["code"] == "NO_PRICE"
    pushed = client.until(lambda m: m["type"] == "Transition" and m["modifications"], 30)
    (update,) = pushed["modifications"]
    assert update["type"] == "QueryUpdated" and update["value"]["usdExact"] == "1"
    assert time.time() * 1000 >= start
