"""The write floor: a minimal Flask app that records one generation per request with the app's
own statement (`RECORD_GENERATIONS`, for one generation) on a raw psycopg connection in
autocommit, under the same gunicorn settings. It is what one durable statement per request costs
with none of the app's work (no validation, tokens, rate limit, log line or SQLAlchemy): `make
bench` reports it beside updateModelStats on PostgreSQL. WRITE_FLOOR_URL names the database.
"""

import json
import os
import threading

import psycopg
from flask import Flask, Response
from sqlalchemy.dialects import postgresql

from functions.models import RECORD_GENERATIONS

app = Flask(__name__)
COMPILED = RECORD_GENERATIONS.compile(dialect=postgresql.dialect())
STATEMENT = str(COMPILED)
URL = os.environ.get("WRITE_FLOOR_URL", "").replace("postgresql+psycopg://", "postgresql://")
PARAMETERS = {**COMPILED.params, "model_id": "luma/ray-flash-2-540p", "count": 1, "successes": 1,
              "micros": 12_500_000, "now": 0}
_local = threading.local()


@app.post("/api/<kind>")
def record(kind: str) -> Response:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = psycopg.connect(URL, autocommit=True)
    row = connection.execute(STATEMENT, PARAMETERS).fetchone()
    body = {"status": "success", "value": list(row), "logLines": []}
    return Response(json.dumps(body), mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
