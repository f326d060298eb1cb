"""The write floor: a minimal Flask app that records one generation per request with the app's
own statement (functions/usage.py: the model's totals, its minute's usage row and the tick of
the fleet's clock, one statement on PostgreSQL, for one generation) on a raw psycopg connection
in autocommit, under the same gunicorn settings. It is what one durable statement per request
costs with none of the app's work (no validation, tokens, rate limit, log line or SQLAlchemy):
`make bench` reports it beside updateModelStats on PostgreSQL. WRITE_FLOOR_URL names the
database.
"""

import json
import os
import threading
import time

import psycopg
from flask import Flask, Response
from sqlalchemy.dialects import postgresql

from db.schema import HISTOGRAM
from functions.usage import latency_bucket, statement

app = Flask(__name__)
STATEMENT = statement(postgresql.psycopg.dialect(), "both", 1, 1, 10).sql
URL = os.environ.get("WRITE_FLOOR_URL", "").replace("postgresql+psycopg://", "postgresql://")
MODEL_ID = "luma/ray-flash-2-540p"
MICROS = 12_500_000
PARAMETERS = {"g0": 1, "s0": 1, "t0": MICROS, "now": 0, "size": 60,
              "u0g": 1, "u0s": 1, "u0t": MICROS, "u0c": 0, "u0e": None,
              **{f"u0{name}": int(i == latency_bucket(MICROS))
                 for i, name in enumerate(HISTOGRAM)}}
_local = threading.local()


@app.post("/api/<kind>")
def record(kind: str) -> Response:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = psycopg.connect(URL, autocommit=True)
        _local.pk = connection.execute("SELECT id FROM models WHERE model_id = %s",
                                       (MODEL_ID,)).fetchone()[0]
    now = int(time.time() * 1000)
    row = connection.execute(STATEMENT, {**PARAMETERS, "p0": _local.pk, "u0pk": _local.pk,
                                         "now": now, "u0start": now - now % 60_000}).fetchone()
    body = {"status": "success", "value": list(row), "logLines": []}
    return Response(json.dumps(body), mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
