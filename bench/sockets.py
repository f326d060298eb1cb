"""What the server holds per idle live-query socket: memory, threads and CPU.

One gunicorn worker (gthread, deploy/gunicorn.conf.py) on SQLite. SOCKETS sockets connect,
subscribe to one quote each and then say nothing; the worker's resident memory, its thread
count (/proc/<pid>/status) and its CPU over MEASURE_SECONDS are read before and after, and
divided by the sockets. Then as many sockets again try to open: the worker admits none past
SYNC_SOCKETS_PER_WORKER, and plain requests meanwhile are timed against the same requests
with no socket open, before and after (a ratio, as everywhere in the benchmark).

`python -m bench sockets` runs this section alone and rewrites it in bench/results.md.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import requests
from simple_websocket import Client
from simple_websocket import ConnectionError as Refused

SOCKETS = 100
MEASURE_SECONDS = 5
PLAIN_REQUESTS = 300
QUOTE = {"modelId": "luma/ray-2-720p", "duration": 9, "quality": "high"}


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            fields[name] = int(value.split()[0])
    return fields


def _cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def _idle_cpu_us_per_s(pid: int) -> float:
    """The worker's CPU, in µs per second, while nothing is asked of it."""
    before, started = _cpu_ticks(pid), time.monotonic()
    time.sleep(MEASURE_SECONDS)  # a measuring window, not a wait for an outcome
    ticks = _cpu_ticks(pid) - before
    return ticks * 1e6 / os.sysconf("SC_CLK_TCK") / (time.monotonic() - started)


def _subscribed(url: str) -> Client:
    ws = Client.connect(url.replace("http", "ws", 1) + "/api/1.48.0/sync")
    ws.send(json.dumps({"type": "Connect", "sessionId": "bench", "connectionCount": 0}))
    ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                        "modifications": [{"type": "Add", "queryId": 0, "args": [QUOTE],
                                           "udfPath": "pricing:getCreditCost"}]}))
    while json.loads(ws.receive(timeout=30))["type"] != "Transition":
        pass
    return ws


def _plain_ms(url: str) -> float:
    """The median time of a plain query, in ms."""
    times = []
    with requests.Session() as http:
        for _ in range(PLAIN_REQUESTS):
            started = time.perf_counter()
            http.post(f"{url}/api/query", json={"path": "pricing:getCreditCost", "args": QUOTE},
                      timeout=30).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(server_factory) -> dict:
    """`server_factory(env)` starts a one-worker gunicorn with these settings, returns it."""
    server = server_factory({"SYNC_SOCKETS_PER_WORKER": str(SOCKETS),
                             "SYNC_SOCKETS_PER_ADDRESS": str(SOCKETS),
                             "SYNC_IDLE_SECONDS": "3600", "SYNC_CONNECT_SECONDS": "3600"})
    held: list[Client] = []
    try:
        worker = server.worker_pids()[0]
        _subscribed(server.url).close()  # the first socket warms the caches and the watcher
        _plain_ms(server.url)  # warm
        plain_alone = [_plain_ms(server.url)]
        before, cpu_before = _status(worker), _idle_cpu_us_per_s(worker)
        held = [_subscribed(server.url) for _ in range(SOCKETS)]
        after, cpu_after = _status(worker), _idle_cpu_us_per_s(worker)
        refused = 0
        for _ in range(SOCKETS):
            try:
                held.append(Client.connect(server.url.replace("http", "ws", 1) + "/api/sync"))
            except Refused:
                refused += 1
        plain_with_sockets = _plain_ms(server.url)
        for ws in held:
            ws.close()
        held = []
        plain_alone.append(_plain_ms(server.url))  # before and after: the machine drifts
    finally:
        for ws in held:
            ws.close()
        server.stop()
    plain_alone = statistics.mean(plain_alone)
    return {
        "sockets": SOCKETS,
        "kib_per_socket": (after["VmRSS"] - before["VmRSS"]) / SOCKETS,
        "threads_per_socket": (after["Threads"] - before["Threads"]) / SOCKETS,
        "threads_before": before["Threads"], "threads_after": after["Threads"],
        "cpu_us_per_s_per_socket": (cpu_after - cpu_before) / SOCKETS,
        "cpu_idle_us_per_s": cpu_before,
        "refused": refused,
        "plain_ratio": plain_alone / plain_with_sockets,
        "plain_ms": plain_alone, "plain_ms_with_sockets": plain_with_sockets,
    }


def render(result: dict) -> list[str]:
    if "error" in result:
        return ["## Idle live-query sockets", "", f"The run failed: {result['error']}"]
    r = result
    # One clock tick of the worker's CPU over the window, shared by the sockets.
    resolution = 1e6 / os.sysconf("SC_CLK_TCK") / MEASURE_SECONDS / r["sockets"]
    cpu = r["cpu_us_per_s_per_socket"]
    cpu_text = (f"{cpu:.0f} µs per second" if abs(cpu) > 2 * resolution else
                f"none measurable ({cpu:.0f} µs per second, within the window's resolution of "
                f"±{2 * resolution:.0f})")
    return [
        "## Idle live-query sockets",
        "",
        f"`bench/sockets.py`, {time.strftime('%Y-%m-%d')}: one gunicorn worker on SQLite; "
        f"{r['sockets']} sockets connect, subscribe to one quote each and then send nothing "
        "(as a browser tab left open would).",
        "",
        "| per idle socket | |",
        "| --- | --- |",
        f"| worker memory (RSS growth / sockets) | {r['kib_per_socket']:.0f} KiB |",
        f"| threads (growth / sockets) | {r['threads_per_socket']:.2f} "
        f"({r['threads_before']} → {r['threads_after']}) |",
        f"| worker CPU while idle (growth / sockets, over {MEASURE_SECONDS} s) | {cpu_text}; "
        f"the worker alone: {r['cpu_idle_us_per_s']:.0f} µs/s |",
        "",
        f"With the worker full, {r['refused']} of {r['sockets']} more sockets were refused "
        "(503 `TooManySockets`), and a plain query took "
        f"{r['plain_ms_with_sockets']:.2f} ms (median of {PLAIN_REQUESTS}, one at a time) "
        f"against {r['plain_ms']:.2f} ms with no socket open (before and after): a ratio of "
        f"{r['plain_ratio']:.2f}. A session sleeps until a message, a change (the watcher "
        "wakes it) or a deadline (a ping every `SYNC_PING_SECONDS`); the worker's own idle CPU "
        "is the watcher polling the database's fingerprints every 50 ms (wire/live.py).",
    ]
