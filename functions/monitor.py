"""The monitor: the catalog's work outside requests, as "health monitor".

Each round (`run_round`):
1. roll-up of usage (`usage:rollUp`), under a lease taken at most every ROLL_UP_EVERY_MS;
2. health evaluation (`health:evaluateHealth`), under a lease taken at most every
   MONITOR_INTERVAL_SECONDS: alerts, webhook queue, pauses;
3. webhook deliveries that are due, claimed one at a time, under a lease taken at most every
   MONITOR_INTERVAL_SECONDS (one process delivers per round, up to DELIVERIES_PER_ROUND).

Every write runs a function through the runtime (`call`), as every other write does. In
production each gunicorn worker runs rounds on a background thread
(deploy/gunicorn.conf.py starts it: `start`), every MONITOR_INTERVAL_SECONDS; the leases in the
database let one process do each job per round, fleet-wide. With MONITOR_INTERVAL_SECONDS=0
there is no thread: run `flask monitor run` (a loop) or `flask monitor run --once` from a
timer instead. Tests call `run_round` (or the functions) with an injected clock.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app

from db import get_db
from engine.background import Periodic, take_leases
from engine.runtime import call, system
from functions import webhooks

log = logging.getLogger("catalog.monitor")
MONITOR = system("health monitor")
ROLL_UP_EVERY_MS = 5 * 60_000
DELIVERIES_PER_ROUND = 100


def _call(path: str, args: dict | None, now: int):
    return call(path, args, identity=MONITOR, source="monitor", now=now)


def roll_up(now: int) -> dict:
    """Move every old row (a transaction per few thousand rows)."""
    moved = {"minutes": 0, "hours": 0, "days": 0, "eventIds": 0}
    while True:
        done = _call("usage:rollUp", {}, now)
        for key in moved:
            moved[key] += done[key]
        if done["done"]:
            return moved


def evaluate(now: int) -> dict:
    return _call("health:evaluateHealth", {}, now)


def deliver(now: int, timeout: float, limit: int = DELIVERIES_PER_ROUND,
            budget: float | None = None) -> list[dict]:
    """Post the deliveries that are due; each outcome is recorded (retried later on failure).
    With `budget` (s), stop starting new ones once that long has passed (receivers that time
    out must not hold the round up). A webhook that fails is passed over for the rest of the
    round: a receiver that hangs costs the round one timeout, not one per alert queued for it,
    ahead of every other webhook's."""
    outcomes, failed = [], []
    private = webhooks.private_allowed(current_app.config)
    deadline = None if budget is None else time.monotonic() + budget
    for _ in range(limit):
        if deadline is not None and time.monotonic() >= deadline:
            break
        claimed = _call("webhooks:claimDelivery", {"skip": failed}, now)
        if claimed is None:
            break
        error = webhooks.post(claimed, now, timeout, private)
        if error is not None:
            failed.append(claimed["webhook"])
        outcome = _call("webhooks:finishDelivery", {"id": claimed["id"], "ok": error is None,
                                                   **({"error": error} if error else {})}, now)
        if outcome is not None:  # None: its webhook was deleted meanwhile
            outcomes.append(outcome)
    return outcomes


def run_round(app: Flask, now: int | None = None, force: bool = False) -> dict:
    """One round of the monitor's jobs; `force` runs every job whatever the leases say."""
    config = app.config
    with app.app_context():
        moment = int(time.time() * 1000) if now is None else now
        engine = get_db().engine
        done: dict = {}
        interval = max(1, config["MONITOR_INTERVAL_SECONDS"]) * 1000
        jobs = {"usage": ROLL_UP_EVERY_MS, "health": interval, "deliveries": interval}
        # One statement takes whichever leases are due: an idle fleet's workers cost the
        # database one round trip each per round.
        taken = set(jobs) if force else take_leases(engine, jobs, moment)
        if "usage" in taken:
            done["rollUp"] = roll_up(moment)
        if "health" in taken:
            done["health"] = evaluate(moment)
        if "deliveries" in taken:
            done["deliveries"] = deliver(moment, config["WEBHOOK_TIMEOUT_SECONDS"],
                                         budget=max(1, config["MONITOR_INTERVAL_SECONDS"]))
        return done


def start(app: Flask) -> Periodic | None:
    """The monitor's thread for this process (None when MONITOR_INTERVAL_SECONDS is 0)."""
    seconds = app.config["MONITOR_INTERVAL_SECONDS"]
    if not seconds:
        return None
    monitor = Periodic("catalog-monitor", seconds, lambda: run_round(app))
    app.extensions["monitor"] = monitor
    return monitor.start()
