"""Web pages on other origins calling the API from a browser (CORS): the preflight, the
answer's headers, the origins allowed; and the official client in Chromium on another origin."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config import Config
from tests.conftest import catalog_fingerprint, run_as_system
from tests.test_catalog import RAY

PAGE = "http://app.example.com"
QUOTE = {"modelId": RAY, "duration": 9, "quality": "high"}


def ask(client, origin: str | None = PAGE, method: str = "POST"):
    """A preflight of a call with a token, as a browser sends it before the call."""
    headers = {"Access-Control-Request-Method": method,
               "Access-Control-Request-Headers": "authorization,content-type,convex-client"}
    if origin:
        headers["Origin"] = origin
    return client.options("/api/query", headers=headers)


def test_any_page_may_call_by_default_and_other_clients_see_no_change(seeded, client):
    preflight = ask(client)
    assert preflight.status_code == 204 and preflight.data == b""
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"]
            .split(",")} >= {"authorization", "content-type", "convex-client"}
    assert preflight.headers["Allow"] == "POST, OPTIONS"
    called = client.post("/api/query", headers={"Origin": PAGE},
                         json={"path": "pricing:getCreditCost", "args": QUOTE})
    assert called.json["value"]["credits"] == 162
    assert called.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Request-Id" in called.headers["Access-Control-Expose-Headers"]
    refused = client.post("/api/mutation", headers={"Origin": PAGE, "Authorization": "Bearer x"},
                          json={"path": "models:updateModelStats", "args": {}})
    assert refused.status_code == 401  # a refusal the page can read too
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    plain = client.post("/api/query", json={"path": "pricing:getCreditCost", "args": QUOTE})
    assert "Access-Control-Allow-Origin" not in plain.headers  # no Origin: not a page


def test_a_list_of_origins_lets_only_those_pages_read_answers(seeded, client):
    seeded.config["API_ALLOWED_ORIGINS"] = Config.from_environ(
        Path(seeded.instance_path), {"API_ALLOWED_ORIGINS": f"{PAGE}, https://b.example.com"},
    )["API_ALLOWED_ORIGINS"]
    allowed = ask(client)
    assert allowed.headers["Access-Control-Allow-Origin"] == PAGE
    assert allowed.headers["Vary"] == "Origin"
    stranger = ask(client, "https://evil.example.com")
    assert stranger.status_code == 204
    assert "Access-Control-Allow-Origin" not in stranger.headers
    assert "Access-Control-Allow-Headers" not in stranger.headers
    before = catalog_fingerprint(seeded)
    token = run_as_system(seeded, "access:createToken",
                          {"name": "page", "scopes": ["catalog:write"]})["token"]
    sent = client.post("/api/mutation", headers={
        "Origin": "https://evil.example.com", "Authorization": f"Bearer {token}"},
        json={"path": "models:updateModel", "args": {"modelId": RAY,
                                                      "patch": {"name": "Sent anyway"}}})
    # A browser sends no such call after the refused preflight; a script that sends it is not a
    # page, and its token decides, as for any client.
    assert "Access-Control-Allow-Origin" not in sent.headers
    assert sent.json["value"]["name"] == "Sent anyway"
    assert catalog_fingerprint(seeded) != before
    plain = client.post("/api/query", json={"path": "models:getActiveModels", "args": {}})
    assert "Origin" in plain.headers.getlist("Vary")  # a cache keeps each page's answer apart
    seeded.config["API_ALLOWED_ORIGINS"] = frozenset()  # none
    assert "Access-Control-Allow-Origin" not in ask(client).headers


@pytest.fixture
def page_origin():
    """Another origin (a second loopback server) serving a page and the official Convex
    client's browser bundle."""
    bundle = (Path(__file__).parent / "convex_client/node_modules/convex/dist/"
              "browser.bundle.js").read_bytes()
    files = {"/": (b"<!doctype html><title>app</title><script src='/convex.js'></script>",
                   "text/html"), "/convex.js": (bundle, "text/javascript")}

    class Files(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body, kind = files.get(self.path, (b"", "text/plain"))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


CALLS = """async ([api, token, args, modelId]) => {
  const client = new convex.ConvexHttpClient(api, {skipConvexDeploymentUrlCheck: true});
  const quote = await client.query("pricing:getCreditCost", args);
  client.setAuth(token);
  const model = await client.mutation("models:updateModel",
                                      {modelId, patch: {name: "Renamed by a page"}});
  return {credits: quote.credits, name: model.name};
}"""


def test_the_official_client_in_a_page_on_another_origin(seeded, gunicorn, browser,
                                                          page_origin, make_token):
    """ConvexHttpClient in Chromium, on a page served from another origin: a query, then a
    mutation with a token. Allowed, both work; with the page's origin left out of
    API_ALLOWED_ORIGINS, the browser refuses the call and nothing changes."""
    token = make_token("catalog:write")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_origin + "/")
        api = gunicorn(seeded.config["DATABASE_URL"], workers=1)
        called = page.evaluate(CALLS, [api.url, token, QUOTE, RAY])
        assert called == {"credits": 162, "name": "Renamed by a page"}
        run_as_system(seeded, "models:updateModel", {"modelId": RAY, "patch": {"name": "Ray"}})
        before = catalog_fingerprint(seeded)
        closed = gunicorn(seeded.config["DATABASE_URL"], workers=1,
                          API_ALLOWED_ORIGINS="https://app.example.com")
        with pytest.raises(Exception, match="Failed to fetch"):
            page.evaluate(CALLS, [closed.url, token, QUOTE, RAY])
        assert catalog_fingerprint(seeded) == before
    finally:
        context.close()
