"""The floors: the least a server can do per request, under the same gunicorn settings.

- `app`: a minimal Flask app answering constant bytes. Computed answers and writes go through
  the app's own code, so this is the floor they are held to.
- `raw`: a bare WSGI callable answering the same bytes, without Flask. Held answers are served
  in front of Flask (wire/http.py), so this is their ceiling.
- `busy`: `raw` after BENCH_BUSY_LOOPS turns of a plain Python loop (bench/steps.py): what a
  given amount of Python work costs a request under gunicorn.
"""

import os

from flask import Flask, Response

app = Flask(__name__)
BODY = b'{"status":"success","value":{"valid":true},"logLines":[]}'
HEALTHZ = b'{"status":"ok","database":"ok"}'


@app.post("/api/<kind>")
def constant(kind: str) -> Response:
    return Response(BODY, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(HEALTHZ, mimetype="application/json")


def raw(environ: dict, start_response):
    body = HEALTHZ if environ.get("PATH_INFO") == "/healthz" else BODY
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


BUSY_LOOPS = int(os.environ.get("BENCH_BUSY_LOOPS", "0"))


def spin(loops: int) -> int:
    """Plain Python work: a loop of small integer sums."""
    total = 0
    for i in range(loops):
        total += i & 7
    return total


def busy(environ: dict, start_response):
    if environ.get("PATH_INFO") != "/healthz":
        spin(BUSY_LOOPS)
    return raw(environ, start_response)
