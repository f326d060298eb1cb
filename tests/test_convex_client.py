"""The wire contract as the official `convex` npm client sees it, against gunicorn."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ROOT, run_as_system

CLIENT = ROOT / "tests" / "convex_client"


def test_official_convex_http_client(seeded, gunicorn):
    token = run_as_system(seeded, "access:createToken",
                          {"name": "node", "scopes": ["catalog:write", "stats:write"]})["token"]
    server = gunicorn(seeded.config["DATABASE_URL"])
    result = subprocess.run(["node", "contract.mjs", server.url, token], cwd=CLIENT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)

    assert [m["modelId"] for m in seen["active"]["ok"]] == [
        "google/veo-3", "luma/ray-2-720p", "luma/ray-flash-2-540p"]
    assert seen["default"]["ok"]["modelId"] == "luma/ray-flash-2-540p"
    assert seen["quote"]["ok"]["credits"] == 162 and seen["quote"]["ok"]["usd"] == 1.62
    assert seen["badQuality"]["error"] == "ConvexError"
    assert seen["badQuality"]["data"]["code"] == "UNSUPPORTED_QUALITY"
    assert seen["badQuality"]["data"]["field"] == "quality"
    assert seen["anonymousMutation"]["error"] == "Error"
    assert "Unauthenticated" in seen["anonymousMutation"]["message"]
    assert seen["setDefault"]["ok"]["isDefault"] is True
    assert seen["stats"]["ok"] == {"modelId": "google/veo-3", "totalGenerations": 1,
                                   "averageGenerationTime": 42.5, "successRate": 100}
    assert seen["bigint"]["ok"]["duration"] == 5
    assert len(seen["page"]["ok"]["page"]) == 2 and seen["page"]["ok"]["isDone"] is False
    assert "FunctionNotFound" in seen["unknown"]["message"]
