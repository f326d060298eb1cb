"""The README's examples run as written: the curl calls and the Node client snippets, against
gunicorn, with only the server's address put in place of localhost:8000. (The Python client's
example runs in tests/test_python_client.py.)"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading

from tests.conftest import ROOT

NODE_DIR = ROOT / "tests" / "convex_client"  # where the Convex npm client is installed


def examples(language: str, after: str) -> list[str]:
    """The README's code blocks in `language`, from the heading `after` on."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(after):]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def as_written(code: str, url: str) -> str:
    return code.replace("http://localhost:8000", url).replace("localhost:8000", url)


def test_the_curl_examples_run_as_written(seeded, gunicorn, make_token):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1)
    curl = examples("sh", "## Calling it")[0]
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", as_written(curl, server.url)],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin",
                               "CATALOG_TOKEN": make_token("stats:write")})
    assert done.returncode == 0, done.stderr
    decoder, printed, answers = json.JSONDecoder(), done.stdout.strip(), []
    while printed:  # curl prints each answer with no line break after it
        answer, end = decoder.raw_decode(printed)
        answers.append(answer)
        printed = printed[end:].lstrip()
    quote, recorded = answers
    assert quote["status"] == "success" and quote["value"]["credits"] == 162
    assert recorded["status"] == "success"


def test_the_node_client_example_runs_as_written(seeded, gunicorn, make_token, tmp_path):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1)
    script = NODE_DIR / f"readme-{tmp_path.name}.mjs"
    code = examples("js", "With the official Convex client (Node)")[0]
    script.write_text(as_written(code, server.url) + "\nconsole.log(JSON.stringify(models));\n")
    try:
        done = subprocess.run(["node", script.name], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin:/usr/local/bin",
                                   "CATALOG_TOKEN": make_token("stats:write")})
    finally:
        script.unlink()
    assert done.returncode == 0, done.stderr
    models = json.loads(done.stdout.splitlines()[-1])
    assert [m["modelId"] for m in models] == [
        "google/veo-3", "luma/ray-2-720p", "luma/ray-flash-2-540p"]


def test_the_live_query_example_runs_as_written(seeded, gunicorn, make_token, tmp_path):
    """The live snippet shows the quote, then the new one when the price changes."""
    from engine.runtime import call, system

    server = gunicorn(seeded.config["DATABASE_URL"], workers=1)
    script = NODE_DIR / f"live-{tmp_path.name}.mjs"
    script.write_text(as_written(examples("js", "## Live queries")[0], server.url))
    live = subprocess.Popen(["node", script.name], cwd=NODE_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin:/usr/local/bin",
                                 "CATALOG_TOKEN": make_token("catalog:write")})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in live.stdout],
                     daemon=True).start()
    try:
        shown = [lines.get(timeout=60)]
        with seeded.app_context():
            call("models:updateModel", {"modelId": "luma/ray-2-720p",
                                        "patch": {"costPerSecond": 0.2}},
                 identity=system("test"), source="test")
        shown.append(lines.get(timeout=60))
    finally:
        live.kill()
        live.wait(10)
        script.unlink()
    assert shown == ["Ray 2, 9 s, high: 162 credits", "Ray 2, 9 s, high: 180 credits"]
