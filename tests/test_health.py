"""Health (functions/health.py): states from the window with hysteresis, alerts with their
figures, auto-pause through the usual mutation, and what subscribers see."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import select, update

from db.schema import ModelHistory
from engine.errors import FunctionError
from functions import monitor
from functions.health import Figures, classify
from functions.health_policy import Policy
from functions.monitor import run_round
from tests.conftest import Api
from tests.test_catalog import FLASH, RAY, VEO
from tests.test_usage import MINUTE, NOW, event, run

POLICY = Policy(window_seconds=900, min_generations=20, degraded_success_rate=95,
                failing_success_rate=80, degraded_p95_seconds=None, failing_p95_seconds=None)
MARGIN = 0.2


def figures(generations: int, successes: int, p95: float | None = None) -> Figures:
    return Figures(generations, successes, None, p95, 900)


@pytest.mark.parametrize(("generations", "successes", "previous", "state"), [
    (0, 0, None, "unknown"),
    (19, 0, None, "unknown"),  # too few to judge
    (20, 20, None, "healthy"),
    (100, 95, None, "healthy"),  # at the threshold: still healthy
    (100, 94, None, "degraded"),
    (100, 79, None, "failing"),
    (100, 79, "healthy", "failing"),  # worse: at once
    (100, 95, "degraded", "degraded"),  # better only past the margin: 4% failures or fewer
    (100, 96, "degraded", "healthy"),
    (100, 83, "failing", "failing"),  # failing -> degraded needs <= 16% failures
    (100, 84, "failing", "degraded"),
    (100, 97, "failing", "healthy"),
    (12, 0, "healthy", "failing"),  # a known model is judged down to half minGenerations
    (9, 0, "failing", "unknown"),
    (12, 12, "unknown", "unknown"),
])
def test_states_follow_the_thresholds_with_hysteresis(generations, successes, previous, state):
    assert classify(figures(generations, successes), POLICY, previous, MARGIN) == state


def test_latency_thresholds_work_the_same_way():
    policy = Policy(900, 20, 95, 80, degraded_p95_seconds=30, failing_p95_seconds=60)
    assert classify(figures(50, 50, p95=29), policy, None, MARGIN) == "healthy"
    assert classify(figures(50, 50, p95=31), policy, None, MARGIN) == "degraded"
    assert classify(figures(50, 50, p95=61), policy, "healthy", MARGIN) == "failing"
    assert classify(figures(50, 50, p95=50), policy, "failing", MARGIN) == "failing"  # > 48
    assert classify(figures(50, 50, p95=47), policy, "failing", MARGIN) == "degraded"
    assert classify(figures(50, 50, p95=25), policy, "degraded", MARGIN) == "degraded"
    assert classify(figures(50, 50, p95=24), policy, "degraded", MARGIN) == "healthy"


def record(app, model: str, successes: int, failures: int, at: int = NOW,
           seconds: float = 10) -> None:
    events = [event(model, seconds, True, at=at) for _ in range(successes)]
    events += [event(model, seconds, False, errorCode="TIMEOUT", at=at)
               for _ in range(failures)]
    run(app, "models:recordGenerations", {"events": events}, now=at)  # recorded as they end


def evaluate(app, now: int = NOW) -> list[dict]:
    """The monitor's health job, as it runs it (as "health monitor"), at `now`."""
    with app.app_context():
        return monitor.evaluate(now)["alerts"]


def test_a_change_of_state_records_an_alert_with_its_figures(seeded, api):
    assert evaluate(seeded) == []  # no data: every model unknown, nothing changed
    assert api.value("query", "models:getModelHealth", {"modelId": RAY})["state"] == "unknown"
    record(seeded, RAY, 10, 15, seconds=12.5)
    (alert,) = evaluate(seeded, NOW + MINUTE)
    assert (alert["modelId"], alert["from"], alert["to"], alert["action"]) == (
        RAY, "unknown", "failing", None)
    figures_ = alert["figures"]
    assert (figures_["generations"], figures_["failures"], figures_["successRate"],
            figures_["windowSeconds"]) == (25, 15, 40.0, 900)
    assert 10 < figures_["p95GenerationTime"] <= 15
    assert figures_["policy"]["failingSuccessRate"] == 80.0
    health = api.value("query", "models:getModelHealth", {"modelId": RAY})
    assert health == {"modelId": RAY, "state": "failing", "since": NOW + MINUTE,
                      "successRate": 40.0, "p50GenerationTime": health["p50GenerationTime"],
                      "p95GenerationTime": figures_["p95GenerationTime"], "generations": 25,
                      "windowSeconds": 900, "evaluatedAt": NOW + MINUTE}
    every = api.value("query", "models:getModelHealth")
    assert [h["modelId"] for h in every] == [VEO, RAY, FLASH]
    assert evaluate(seeded, NOW + 2 * MINUTE) == []  # no change: no alert
    # 15 minutes on, the window holds nothing: unknown again.
    (gone,) = evaluate(seeded, NOW + 16 * MINUTE)
    assert (gone["from"], gone["to"], gone["figures"]["generations"]) == (
        "failing", "unknown", 0)
    listed = api.value("query", "models:listAlerts",
                       {"paginationOpts": {"numItems": 10, "cursor": None}})
    assert [(a["from"], a["to"]) for a in listed["page"]] == [
        ("failing", "unknown"), ("unknown", "failing")]


def test_alerts_are_listed_to_signed_in_callers_and_acknowledged(seeded, client, make_token):
    record(seeded, RAY, 0, 30)
    record(seeded, VEO, 30, 0)
    evaluate(seeded)
    reader, writer = Api(client, make_token("stats:write")), Api(client, make_token(
        "catalog:write"))
    first = {"numItems": 1, "cursor": None}
    assert Api(client).post("query", "models:listAlerts",
                            {"paginationOpts": first}).status_code == 401
    page = reader.value("query", "models:listAlerts", {"paginationOpts": first})
    assert len(page["page"]) == 1 and not page["isDone"]
    rest = reader.value("query", "models:listAlerts", {"paginationOpts": {
        "numItems": 10, "cursor": page["continueCursor"]}})
    assert rest["isDone"] and {a["modelId"] for a in page["page"] + rest["page"]} == {RAY, VEO}
    ray = reader.value("query", "models:listAlerts", {"paginationOpts": first,
                                                      "modelId": RAY})["page"][0]
    assert reader.post("mutation", "models:acknowledgeAlert",
                       {"alertId": ray["_id"]}).status_code == 403
    done = writer.value("mutation", "models:acknowledgeAlert", {"alertId": ray["_id"]})
    assert done["acknowledgedBy"].startswith("token:") and done["acknowledgedAt"] is not None
    assert writer.value("mutation", "models:acknowledgeAlert", {"alertId": ray["_id"]}) == done
    open_ = reader.value("query", "models:listAlerts", {
        "paginationOpts": {"numItems": 10, "cursor": None}, "open": True})["page"]
    assert [a["modelId"] for a in open_] == [VEO]
    missing = writer.mutation("models:acknowledgeAlert", {"alertId": "999999"})
    assert missing["errorData"] == {"code": "NOT_FOUND", "field": "alertId"}
    huge = writer.mutation("models:acknowledgeAlert", {"alertId": "9" * 20})
    assert huge["errorData"] == {"code": "NOT_FOUND", "field": "alertId"}


def test_hysteresis_end_to_end(seeded):
    record(seeded, RAY, 93, 7)  # 93%: degraded
    assert [a["to"] for a in evaluate(seeded)] == ["degraded"]
    record(seeded, RAY, 2, 0, at=NOW + MINUTE)  # 95/102 = 93.1%: still degraded
    assert evaluate(seeded, NOW + MINUTE) == []
    record(seeded, RAY, 73, 0, at=NOW + 2 * MINUTE)  # 168/175 = 96%: healthy
    assert [a["to"] for a in evaluate(seeded, NOW + 2 * MINUTE)] == ["healthy"]


def test_a_model_that_asks_is_paused_when_failing_and_only_then(seeded, api):
    for model in (RAY, FLASH, VEO):
        api.value("mutation", "models:updateModel",
                  {"modelId": model, "patch": {"pauseWhenFailing": True}})
    api.value("mutation", "models:lockModel", {"modelId": VEO})  # system-signed token: admin
    for model in (RAY, FLASH, VEO):
        record(seeded, model, 5, 25)
    alerts = {a["modelId"]: a for a in evaluate(seeded)}
    assert alerts[RAY]["action"] == "paused"
    assert alerts[FLASH]["action"] == "not paused: the model is the default"
    assert alerts[VEO]["action"] == "not paused: the model is locked"
    ray = api.value("query", "models:getModelById", {"modelId": RAY})
    assert not ray["isActive"] and ray["revision"] == 3
    assert api.value("query", "models:getModelById", {"modelId": FLASH})["isActive"]
    with seeded.app_context():
        from db import get_db
        from db.engine import read

        with read(get_db().engine) as session:
            last = session.scalars(select(ModelHistory).where(ModelHistory.model_id == RAY)
                                   .order_by(ModelHistory.revision.desc())).first()
    assert (last.actor, last.source, last.action) == ("health monitor", "monitor", "disable")
    assert last.changes == [{"field": "isActive", "old": True, "new": False}]
    assert "failing" in last.reason and "success rate 16.7% of 30 generations" in last.reason
    # An admin turns it back on; while its state stays failing it is not paused again.
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"isActive": True}})
    record(seeded, RAY, 0, 5, at=NOW + MINUTE)
    assert evaluate(seeded, NOW + MINUTE) == []
    assert api.value("query", "models:getModelById", {"modelId": RAY})["isActive"]


def test_a_model_without_the_option_only_alerts(seeded, api):
    record(seeded, RAY, 0, 30)
    (alert,) = evaluate(seeded)
    assert alert["to"] == "failing" and alert["action"] is None
    assert api.value("query", "models:getModelById", {"modelId": RAY})["isActive"]


def test_the_health_policy_is_part_of_the_catalog(seeded, api):
    policy = {"minGenerations": 5, "failingSuccessRate": 50, "degradedSuccessRate": 90,
              "failingP95Seconds": 20, "windowSeconds": 300}
    api.value("mutation", "models:updateModel",
              {"modelId": RAY, "patch": {"healthPolicy": policy}, "reason": "tighter"})
    history = api.value("query", "history:getModelHistory",
                        {"modelId": RAY, "paginationOpts": {"numItems": 1, "cursor": None}})
    assert history["page"][0]["changes"] == [{"field": "healthPolicy", "old": None,
                                              "new": policy}]
    exported = api.value("query", "catalog:exportCatalog")
    assert next(m for m in exported["models"] if m["modelId"] == RAY)["healthPolicy"] == policy
    record(seeded, RAY, 6, 0, seconds=25)  # few, all successful, but slow
    record(seeded, FLASH, 6, 0, seconds=25)  # the defaults: too few to judge
    alerts = {a["modelId"]: a for a in evaluate(seeded)}
    assert alerts[RAY]["to"] == "failing" and alerts[RAY]["figures"]["windowSeconds"] == 300
    assert FLASH not in alerts
    bad = api.mutation("models:updateModel", {"modelId": RAY, "patch": {"healthPolicy": {
        "degradedSuccessRate": 80, "failingSuccessRate": 90}}})
    assert bad["errorData"] == {"code": "INVALID_ARGUMENT",
                                "field": "patch.healthPolicy.failingSuccessRate"}
    unknown = api.mutation("models:updateModel", {"modelId": RAY, "patch": {
        "healthPolicy": {"threshold": 1}}})
    assert unknown["errorData"]["field"] == "patch.healthPolicy.threshold"


def test_a_health_window_is_whole_minutes(seeded, api):
    """Usage is counted by the minute: a window of 90 s is refused, not judged on 2 minutes
    while the policy says 90 s. One saved before the rule is kept by edits of other fields."""
    refused = api.mutation("models:updateModel", {"modelId": RAY, "patch": {
        "healthPolicy": {"windowSeconds": 90}}})
    assert refused["errorData"] == {"code": "INVALID_ARGUMENT",
                                    "field": "patch.healthPolicy.windowSeconds"}
    assert "must be a multiple of 60 (whole minutes" in refused["errorMessage"]
    assert "got 90" in refused["errorMessage"]
    def policy() -> dict | None:
        exported = api.value("query", "catalog:exportCatalog")["models"]
        return next(m for m in exported if m["modelId"] == RAY).get("healthPolicy")

    assert policy() is None
    with seeded.app_context():  # as a catalog from before the rule holds it
        from db import get_db
        from db.engine import transaction
        from db.schema import Model

        with transaction(get_db().engine, write=True) as session:
            session.execute(update(Model).where(Model.model_id == RAY)
                            .values(health_policy={"windowSeconds": 90}))
    edited = api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {
        "name": "Ray 2 (kept window)"}})
    assert edited["name"] == "Ray 2 (kept window)" and policy() == {"windowSeconds": 90}
    assert api.value("query", "models:getModelHealth", {"modelId": RAY})["windowSeconds"] == 120


def test_a_round_runs_each_job_once_per_lease(seeded):
    record(seeded, RAY, 0, 30)
    first = run_round(seeded, now=NOW)
    assert [a["to"] for a in first["health"]["alerts"]] == ["failing"]
    assert "rollUp" in first
    second = run_round(seeded, now=NOW + 1000)  # another process, a second later
    assert "health" not in second and "rollUp" not in second
    third = run_round(seeded, now=NOW + 10_000)  # MONITOR_INTERVAL_SECONDS later
    assert third["health"]["alerts"] == [] and "rollUp" not in third


def test_health_and_alerts_reach_live_subscribers(seeded, gunicorn, make_token):
    """A subscriber to models:getModelHealth and models:listAlerts (over the Convex sync
    protocol) gets the monitor's change, made by another process, without asking again."""
    from simple_websocket import Client

    token = make_token("stats:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, MONITOR_INTERVAL_SECONDS="0",
                      GUNICORN_THREADS="8")
    ws = Client.connect(server.url.replace("http", "ws") + "/api/1.48.0/sync")
    try:
        ws.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0}))
        ws.send(json.dumps({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                            "value": token}))
        ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                            "modifications": [
                                {"type": "Add", "queryId": 0,
                                 "udfPath": "models:getModelHealth", "args": [{"modelId": RAY}]},
                                {"type": "Add", "queryId": 1, "udfPath": "models:listAlerts",
                                 "args": [{"paginationOpts": {"numItems": 5, "cursor": None}}]},
                                {"type": "Add", "queryId": 2, "udfPath": "models:getModelById",
                                 "args": [{"modelId": RAY}]},
                            ]}))
        values: dict[int, object] = {}

        def until(done) -> None:
            deadline = time.monotonic() + 30
            while not done():
                assert time.monotonic() < deadline, values
                message = json.loads(ws.receive(timeout=30))
                for change in message.get("modifications", []):
                    if change["type"] == "QueryUpdated":
                        values[change["queryId"]] = change["value"]

        until(lambda: len(values) == 3)
        assert values[0]["state"] == "unknown" and values[1]["page"] == []
        now = int(time.time() * 1000)
        record(seeded, RAY, 0, 30, at=now)
        # The server has seen the recording (health is the monitor's to change, not its).
        until(lambda: values[2]["totalGenerations"] == 30)
        assert values[0]["state"] == "unknown"
        threading.Thread(target=evaluate, args=(seeded, now), daemon=True).start()
        until(lambda: values[0]["state"] == "failing" and values[1]["page"])
        assert values[1]["page"][0]["to"] == "failing"
    finally:
        ws.close()


def test_the_monitor_refuses_nothing_it_should_not(seeded):
    """An internal function: not reachable over HTTP, not callable without a scope."""
    from engine.errors import TransportError
    from engine.runtime import ANONYMOUS, call

    with seeded.app_context(), pytest.raises(TransportError) as refused:
        call("health:evaluateHealth", {}, identity=ANONYMOUS, source="test", public=True)
    assert refused.value.status == 404
    with pytest.raises(FunctionError):
        run(seeded, "models:getModelHealth", {"modelId": "nope/x"})


def test_a_monitor_round_from_the_cli_says_what_it_did(seeded, runner):
    first = runner.invoke(args=["monitor", "run", "--once"])
    assert first.exit_code == 0, first.output
    summary = first.output.splitlines()[-1]
    assert summary.startswith("health: ") and "models judged, 0 alerts" in summary
    assert "usage: 0 minute rows" in summary and "webhooks: none due" in summary
    again = runner.invoke(args=["monitor", "run", "--once"])  # the leases are taken
    assert again.output.splitlines()[-1].startswith("no job was due")
