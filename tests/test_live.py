"""Live queries: the official ConvexClient (under Node) subscribes and sees every change."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ROOT

CLIENT = ROOT / "tests" / "convex_client"
SOCKETS = {"GUNICORN_THREADS": "16"}  # each open socket holds a worker thread


def test_official_convex_client_live_queries(seeded, gunicorn, make_token):
    token = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, **SOCKETS)
    node = subprocess.Popen(["node", "live.mjs", server.url, token], cwd=CLIENT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    steps: dict[str, dict] = {}
    try:
        for line in node.stdout:
            step = json.loads(line)
            steps[step["step"]] = step
            if step["step"] == "restart":
                server.stop()
                server.start()
                node.stdin.write("restarted\n")
                node.stdin.flush()
        node.wait(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, node.stderr.read()

    assert steps["subscribed"]["credits"] == 162 and steps["subscribed"]["active"] == 3
    assert steps["pushed"]["credits"] == 180
    assert steps["pushed"]["otherUpdates"] == 1  # Veo-3's quote did not change: not sent
    assert steps["unchanged"]["quoteUpdates"] == 2  # a description change is not a new quote
    assert steps["ownWrite"]["credits"] == 225  # seen by the time the mutation resolved
    assert steps["refused"]["error"]["code"] == "DEFAULT_REQUIRED"
    assert steps["unsubscribed"]["newUpdates"] == 0
    assert steps["resumed"]["costPerSecond"] == 0.4
