"""The floor: a minimal Flask app answering constant bytes, under the same gunicorn settings."""

from flask import Flask, Response

app = Flask(__name__)
BODY = b'{"status":"success","value":{"valid":true},"logLines":[]}'


@app.post("/api/<kind>")
def constant(kind: str) -> Response:
    return Response(BODY, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok","database":"ok"}', mimetype="application/json")
