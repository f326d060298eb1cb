"""The floors: the least a server can do per request, under the same gunicorn settings.

- `app`: a minimal Flask app answering constant bytes. Computed answers and writes go through
  the app's own code, so this is the floor they are held to.
- `raw`: a bare WSGI callable answering the same bytes, without Flask. Held answers are served
  in front of Flask (wire/http.py), so this is their ceiling.
"""

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
