"""Exactly once: a generation recorded with an `eventId` (models:recordGenerations) is counted
once per caller, however often its call is sent again (a retry after a timeout), at once or
later, on every host; the ids are forgotten with the minutes they could land in."""

from __future__ import annotations

import threading

import pytest
import requests

from engine.errors import FunctionError
from engine.runtime import Identity, call, system
from tests.conftest import catalog_fingerprint, settle_fleet
from tests.test_catalog import FLASH, RAY
from tests.test_usage import HOUR, NOW, event, rows, run


def totals(app, model: str) -> int:
    return run(app, "models:getModelById", {"modelId": model})["totalGenerations"]


def record_as(app, caller: str, events: list[dict], now: int = NOW) -> dict:
    with app.app_context():
        return call("models:recordGenerations", {"events": events},
                    identity=system(caller), source="test", now=now)


def test_a_call_sent_again_records_nothing_twice(seeded):
    events = [event(RAY, 2, eventId="job-1"), event(RAY, 3, eventId="job-2"),
              event(FLASH, 4, eventId="job-3")]
    before = totals(seeded, RAY)
    assert record_as(seeded, "backend", events) == {"recorded": 3, "duplicates": 0}
    after = (totals(seeded, RAY), totals(seeded, FLASH), rows(seeded))
    assert after[0] == before + 2
    assert record_as(seeded, "backend", events, NOW + 1000) == {"recorded": 0, "duplicates": 3}
    assert (totals(seeded, RAY), totals(seeded, FLASH), rows(seeded)) == after


def test_only_the_new_generations_of_a_call_are_recorded(seeded):
    """A retry that carries more (the ids it had and new ones), and generations without an id,
    which are recorded every time."""
    record_as(seeded, "backend", [event(RAY, 2, eventId="a"), event(RAY, 2, eventId="b")])
    before = totals(seeded, RAY)
    again = [event(RAY, 2, eventId="b"), event(RAY, 2, eventId="c"), event(RAY, 2)]
    assert record_as(seeded, "backend", again) == {"recorded": 2, "duplicates": 1}
    assert totals(seeded, RAY) == before + 2


def test_an_id_sent_again_for_another_generation_is_refused(seeded):
    """A retry sends the same generation (its values however spelt); an id reused for another
    one would lose it as a duplicate: the call is refused, and nothing of it recorded."""
    record_as(seeded, "backend", [event(RAY, 2, eventId="job-1", credits=5)])
    spelt_otherwise = [event(RAY.upper(), 2.0, eventId="job-1", credits=5)]
    assert record_as(seeded, "backend", spelt_otherwise) == {"recorded": 0, "duplicates": 1}
    before = catalog_fingerprint(seeded)
    for other in (event(FLASH, 2), event(RAY, 3), event(RAY, 2, False), event(RAY, 2, credits=6),
                  event(RAY, 2, at=NOW - 60_000)):
        with pytest.raises(FunctionError) as refused:
            record_as(seeded, "backend", [event(RAY, 1, eventId="new"),
                                          {**other, "eventId": "job-1"}])
        assert refused.value.data["field"] == "events[1].eventId"
        assert "recorded for another generation" in refused.value.message
    assert catalog_fingerprint(seeded) == before
    # the refused calls remembered nothing either: "new" is still new
    assert record_as(seeded, "backend", [event(RAY, 1, eventId="new")]) == {
        "recorded": 1, "duplicates": 0}


def test_ids_are_each_callers_own(seeded):
    before = totals(seeded, RAY)
    for caller in ("backend", "batch"):
        assert record_as(seeded, caller, [event(RAY, 2, eventId="job-1")])["recorded"] == 1
    assert totals(seeded, RAY) == before + 2


def test_a_signed_in_admin_with_the_longest_email_records_once(seeded):
    """A caller is a token or a user: a user's name is an email of up to 320 characters."""
    admin = Identity.user("a" * 64 + "@" + "b" * 251 + ".com", "admin")
    for recorded, duplicates in ((1, 0), (0, 1)):
        with seeded.app_context():
            answer = call("models:recordGenerations", {"events": [event(RAY, 2, eventId="x")]},
                          identity=admin, source="test", now=NOW)
        assert answer == {"recorded": recorded, "duplicates": duplicates}


def test_a_retry_of_what_is_recorded_tells_no_cache(seeded):
    """It changed nothing: the statistics held by every process stay held."""
    marks = seeded.extensions["catalog_marks"]
    record_as(seeded, "backend", [event(RAY, 2, eventId="once")])
    settle_fleet(seeded)  # the recording's announcement, heard back, bumps the mark once
    version = marks.read("stats")
    assert record_as(seeded, "backend", [event(RAY, 2, eventId="once")])["duplicates"] == 1
    assert marks.read("stats") == version


@pytest.mark.parametrize("events,field", [
    ([event(RAY, 1, eventId="x"), event(RAY, 1), event(RAY, 1, eventId="x")],
     "events[2].eventId"),
    ([event(RAY, 1, eventId="job 1")], "events[0].eventId"),
    ([event(RAY, 1, eventId="")], "events[0].eventId"),
    ([event(RAY, 1, eventId="j" * 101)], "events[0].eventId"),
    ([event(RAY, 1, eventId=7)], "events[0].eventId"),
])
def test_a_bad_or_repeated_id_is_refused_and_changes_nothing(seeded, events, field):
    before = catalog_fingerprint(seeded)
    with pytest.raises(FunctionError) as refused:
        record_as(seeded, "backend", events)
    assert (refused.value.code, refused.value.data["field"]) == ("INVALID_ARGUMENT", field)
    assert catalog_fingerprint(seeded) == before


def test_ids_are_forgotten_with_the_minutes_they_could_land_in(seeded):
    """The roll-up forgets an id once it is older than USAGE_MINUTE_RETENTION_HOURS: until
    then a call sent again records nothing; after, it is a new generation."""
    kept = seeded.config["USAGE_MINUTE_RETENTION_HOURS"] * HOUR
    record_as(seeded, "backend", [event(RAY, 2, eventId="late")])
    assert run(seeded, "usage:rollUp", {}, now=NOW + kept - 1)["eventIds"] == 0
    assert record_as(seeded, "backend", [event(RAY, 2, eventId="late")],
                     NOW + kept - 1)["duplicates"] == 1
    assert run(seeded, "usage:rollUp", {}, now=NOW + kept + 1)["eventIds"] == 1
    assert record_as(seeded, "backend", [event(RAY, 2, eventId="late")],
                     NOW + kept + 1)["recorded"] == 1


def test_the_same_call_sent_at_once_to_every_worker_is_recorded_once(seeded, gunicorn,
                                                                     make_token):
    """8 copies of one call, released together on 2 workers (on PostgreSQL, concurrent
    transactions): one records the 20 generations, the 7 others find them recorded."""
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, MONITOR_INTERVAL_SECONDS="0")
    token = make_token("stats:write")
    body = {"path": "models:recordGenerations", "args": {"events": [
        event(RAY if i % 2 else FLASH, 1 + i, eventId=f"job-{i}") for i in range(20)]}}
    before = totals(seeded, RAY) + totals(seeded, FLASH)
    copies = 8
    start = threading.Barrier(copies)
    answers: list[dict] = []

    def send() -> None:
        with requests.Session() as session:
            start.wait(30)
            answers.append(session.post(f"{server.url}/api/mutation", json=body, timeout=60,
                                        headers={"Authorization": f"Bearer {token}"}).json())

    senders = [threading.Thread(target=send) for _ in range(copies)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert [a["status"] for a in answers] == ["success"] * copies, answers
    assert sorted(a["value"]["recorded"] for a in answers) == [0] * (copies - 1) + [20]
    assert sorted(a["value"]["duplicates"] for a in answers) == [0] + [20] * (copies - 1)
    assert totals(seeded, RAY) + totals(seeded, FLASH) == before + 20


def test_update_model_stats_records_an_event_id_once_too(seeded):
    """The one-generation call takes an eventId as well: its retry answers the model's totals
    as they are, marked a duplicate; the id is the same as recordGenerations' for that caller."""
    one = {"modelId": RAY, "generationTime": 12.5, "success": True, "eventId": "job-9"}
    with seeded.app_context():
        first = call("models:updateModelStats", one, identity=system("backend"), source="test",
                     now=NOW)
        again = call("models:updateModelStats", one, identity=system("backend"), source="test",
                     now=NOW + 1000)
    assert first["duplicate"] is False and again == {**first, "duplicate": True}
    assert totals(seeded, RAY) == first["totalGenerations"]
    assert record_as(seeded, "backend", [event(RAY, 12.5, eventId="job-9")]) == {
        "recorded": 0, "duplicates": 1}
    with seeded.app_context(), pytest.raises(FunctionError) as refused:
        call("models:updateModelStats", {**one, "success": False}, identity=system("backend"),
             source="test", now=NOW)
    assert refused.value.data["field"] == "eventId"
    assert "recorded for another generation" in refused.value.message
    assert totals(seeded, RAY) == first["totalGenerations"]
