"""The official Python client (PyPI `convex`, over the sync WebSocket at /api/sync) against
gunicorn, on both databases."""

from __future__ import annotations

import re
import time

import pytest
from convex import ConvexClient, ConvexError

from tests.conftest import ROOT, within
from tests.sync_client import QUOTE

RAY = "luma/ray-2-720p"


@pytest.fixture(autouse=True)
def nothing_here_takes_the_marks_lock(seeded):
    """The Python client (Rust, PyO3) keeps the GIL while it waits for the server's answer. A
    thread of this process that took the host's change-marks lock then (the fleet's listener,
    hearing the server's own change) cannot let go of it, and the server, waiting on that lock
    before it answers, never does: the suite once hung here. So this process stops listening
    first. (No process that serves runs the client: the app itself is not at risk.)"""
    fleet = seeded.extensions["fleet"]
    fleet.stop()
    deadline = time.monotonic() + 10
    while fleet.listening:  # the listener notices within a second (its wait's timeout)
        assert time.monotonic() < deadline, "the fleet's listener did not stop"
        time.sleep(0.01)


def test_official_python_client(seeded, gunicorn, make_token):
    token = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2)
    client = ConvexClient(server.url)

    active = within(30, client.query, "models:getActiveModels")
    assert [m["modelId"] for m in active] == [
        "google/veo-3", "luma/ray-2-720p", "luma/ray-flash-2-540p"]
    assert within(30, client.query, "pricing:getCreditCost", QUOTE)["credits"] == 162

    with pytest.raises(ConvexError) as refused:
        within(30, client.query, "pricing:getCreditCost", {**QUOTE, "quality": "8k"})
    assert refused.value.data["code"] == "UNSUPPORTED_QUALITY"
    assert refused.value.data["supported"] == ["standard", "high", "ultra"]
    with pytest.raises(Exception, match="Unauthenticated"):
        within(30, client.mutation, "models:updateModel",
               {"modelId": RAY, "patch": {"description": "anonymous"}})

    watcher = ConvexClient(server.url)
    quotes = iter(watcher.subscribe("pricing:getCreditCost", QUOTE))
    assert within(30, next, quotes)["credits"] == 162

    client.set_auth(token)
    changed = within(30, client.mutation, "models:updateModel",
                     {"modelId": RAY, "patch": {"costPerSecond": 0.2}})
    assert changed["costPerSecond"] == 0.2
    assert within(30, next, quotes)["credits"] == 180  # pushed to the other client

    with pytest.raises(ConvexError) as refused:
        within(30, client.mutation, "models:deleteModel", {"modelId": "luma/ray-flash-2-540p"})
    assert refused.value.data["code"] == "DEFAULT_REQUIRED"


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"With the official Python client.*?```python\n(.*?)```", readme, re.S)
    assert found, "the README has no Python client example"
    return found.group(1)


def test_the_readme_python_example_runs_as_written(seeded, gunicorn, make_token, monkeypatch,
                                                   capsys):
    monkeypatch.setenv("CATALOG_TOKEN", make_token("catalog:write", "stats:write"))
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1)
    code = readme_example().replace("http://localhost:8000", server.url)
    within(60, exec, compile(code, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "UNSUPPORTED_QUALITY" in printed and "162" in printed


def test_a_scheduled_price_reaches_live_subscribers_when_its_time_comes(
        seeded, gunicorn, make_token):
    """No write happens at the scheduled moment: the subscription's answer expires then, and
    the session sends the new quote by itself."""

    from tests.test_every_kind import CHAT

    token = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1)
    writer = ConvexClient(server.url)
    writer.set_auth(token)
    within(30, writer.mutation, "models:createModel", {**CHAT, "isActive": True})
    watcher = ConvexClient(server.url)
    quotes = iter(watcher.subscribe("pricing:quote", {
        "modelId": CHAT["modelId"], "usage": {"inputTokens": 1_000_000}}))
    assert within(30, next, quotes)["usdExact"] == "2.5"
    # The last write: a price change scheduled a few seconds ahead (its answer holds till then).
    start = int(time.time() * 1000) + 8000
    within(30, writer.mutation, "models:updateModel", {"modelId": CHAT["modelId"], "patch": {
        "prices": [*CHAT["prices"], {"effectiveFrom": start, "components": [
            {"unit": "input_tokens", "price": "5"}, {"unit": "output_tokens", "price": "20"}]}]}})
    written = time.time() * 1000
    seen = [within(30, next, quotes)["usdExact"]]
    while seen[-1] != "5":
        seen.append(within(30, next, quotes)["usdExact"])
    assert written < start, "the machine took longer than the margin to make the change"
    assert time.time() * 1000 >= start
    assert set(seen) <= {"2.5", "5"}
