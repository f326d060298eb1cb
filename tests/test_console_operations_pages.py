"""The operations pages without a browser (Flask's test client): roles, CSRF, odd input to the
Usage, Alerts and price-import pages (a message, never a 500, nothing changed), paging."""

from __future__ import annotations

import base64
import calendar
import gzip
import io
import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import catalog_fingerprint, run_as_system
from tests.console import create_accounts, sign_in

DATA = Path(__file__).parent / "data" / "litellm_prices.json"
POSTS = ["/admin/alerts/acknowledge", "/admin/catalog_file/prices/plan",
         "/admin/catalog_file/prices/apply"]


@pytest.fixture
def console(seeded):
    create_accounts(seeded)
    return seeded


def text_of(response) -> str:
    assert response.status_code < 500, response.status_code
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    return body


def failing_alert(app) -> str:
    now = int(time.time() * 1000)
    run_as_system(app, "models:recordGenerations", {"events": [
        {"modelId": "google/veo-3", "generationTime": 5, "success": False, "at": now - i * 1000}
        for i in range(30)]})
    alerts = run_as_system(app, "health:evaluateHealth", {})["alerts"]
    return next(a["_id"] for a in alerts if a["modelId"] == "google/veo-3")


@pytest.mark.parametrize("url", POSTS)
def test_anonymous_and_csrf_less_posts_change_nothing(console, client, url):
    failing_alert(console)
    before = catalog_fingerprint(console)
    assert client.post(url, data={"alertId": "1", "source": "genai-prices"}).status_code in (
        302, 400, 401)
    sign_in(client, "admin")
    response = client.post(url, data={"alertId": "1", "source": "genai-prices",
                                      "reason": "x"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert catalog_fingerprint(console) == before
    assert run_as_system(console, "models:listAlerts", {
        "paginationOpts": {"numItems": 5, "cursor": None}, "open": True})["page"]


def test_a_viewer_reads_every_operations_page_and_can_change_nothing(console, client):
    alert_id = failing_alert(console)
    token = sign_in(client, "viewer")
    for url in ("/admin/", "/admin/stats/", "/admin/alerts/", "/admin/catalog_file/"):
        body = text_of(client.get(url))
        assert 'data-action="acknowledge"' not in body
        assert 'id="price-form"' not in body and 'id="upload-form"' not in body
    before = catalog_fingerprint(console)
    for url in POSTS:
        response = client.post(url, data={"csrf_token": token, "alertId": alert_id,
                                          "source": "genai-prices", "reason": "x"})
        assert response.status_code == 403, url
    assert catalog_fingerprint(console) == before
    page = run_as_system(console, "models:listAlerts", {
        "paginationOpts": {"numItems": 5, "cursor": None}})["page"]
    assert page[0]["acknowledgedAt"] is None


def test_an_editor_acknowledges_once_and_an_unknown_alert_is_a_message(console, client):
    alert_id = failing_alert(console)
    token = sign_in(client, "editor")
    body = text_of(client.post("/admin/alerts/acknowledge", follow_redirects=True, data={
        "csrf_token": token, "alertId": alert_id, "back": "home"}))
    assert "Alert acknowledged (on google/veo-3, by editor@example.com" in body
    first = run_as_system(console, "models:listAlerts", {
        "paginationOpts": {"numItems": 1, "cursor": None}, "modelId": "google/veo-3"})
    acknowledged = first["page"][0]["acknowledgedAt"]
    body = text_of(client.post("/admin/alerts/acknowledge", follow_redirects=True,
                               data={"csrf_token": token, "alertId": alert_id}))
    assert "Alert acknowledged (on google/veo-3, by editor@example.com" in body
    again = run_as_system(console, "models:listAlerts", {
        "paginationOpts": {"numItems": 1, "cursor": None}, "modelId": "google/veo-3"})
    assert again["page"][0]["acknowledgedAt"] == acknowledged
    for odd in ("999999", "abc", "", "٣", "1" * 30):
        body = text_of(client.post("/admin/alerts/acknowledge", follow_redirects=True, data={
            "csrf_token": token, "alertId": odd}))
        assert "alert-danger" in body and "Alert acknowledged." not in body, odd


ODD_QUERIES = ["range=1y", "bucket=week", "range=7d&bucket=minute",
               "from=2026-13-01T00:00&to=x", "from=٢٠٢٦-01-01T00:00&to=2026-01-02T00:00",
               "from=2026-01-02T00:00&to=2026-01-01T00:00",
               "from=1970-01-01T00:00&to=2026-01-01T00:00&bucket=minute", "sort=evil&dir=sideways",
               "page=-1", "page=99999999999999999999", "page=²", "sort=p95&dir=asc&page=2"]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_usage_queries_show_a_window(console, client, query):
    sign_in(client, "viewer")
    body = text_of(client.get(f"/admin/stats/?{query}"))
    assert 'id="usage-table"' in body and 'id="window-label"' in body


@pytest.mark.parametrize("query", ["show=open", "show=weird", "cursor=%%%", "cursor=zz",
                                   "cursor=" + "a" * 300])
def test_odd_alert_queries_show_the_list(console, client, query):
    failing_alert(console)
    sign_in(client, "viewer")
    assert 'id="alerts-table"' in text_of(client.get(f"/admin/alerts/?{query}"))


def test_the_usage_table_pages_through_many_models(console, client):
    catalog = run_as_system(console, "catalog:exportCatalog")
    template = catalog["models"][1]
    for i in range(25):
        catalog["models"].append({**template, "modelId": f"acme/extra-{i:02d}",
                                  "name": f"Extra {i:02d}", "isDefault": False})
    run_as_system(console, "catalog:applyCatalog", {"catalog": catalog, "reason": "many"})
    sign_in(client, "viewer")
    first = text_of(client.get("/admin/stats/?sort=name&dir=asc"))
    assert first.count("<tr data-model=") == 20 and "Models 1 to 20 of 28." in first
    second = text_of(client.get("/admin/stats/?sort=name&dir=asc&page=2"))
    assert second.count("<tr data-model=") == 8 and "Models 21 to 28 of 28." in second
    names = re.findall(r'<tr data-model="([^"]+)"', first + second)
    assert len(set(names)) == 28


def price_form(token: str, **fields) -> dict:
    return {"csrf_token": token, "source": "litellm", **fields}


def test_price_import_form_errors_are_messages_and_change_nothing(console, client):
    token = sign_in(client, "editor")
    before = catalog_fingerprint(console)
    cases = [
        ({"source": "elsewhere"}, "Choose a source"),
        ({}, "Choose the LiteLLM file"),
        ({"file": (b"[1, 2]", "map.json")}, "JSON object of entries"),
        ({"file": (b"{not json", "map.json")}, "Not valid JSON"),
        ({"file": (b"\x1f\x8b broken", "map.json.gz")}, "cannot be decompressed"),
        ({"file": (b"[" * 100 + b"]" * 100, "map.json")}, "Nested more than"),
        ({"payload": "not base64!"}, "upload the file again"),
        ({"providers": "openai, <script>", "file": (DATA.read_bytes(), "m.json")},
         "Not a provider name"),
    ]
    for fields, message in cases:
        for step in ("plan", "apply"):
            sent = dict(fields)
            if "file" in sent:
                sent["file"] = (io.BytesIO(sent["file"][0]), sent["file"][1])
            body = text_of(client.post(
                f"/admin/catalog_file/prices/{step}", follow_redirects=True,
                data={**price_form(token, reason="why"), **sent},
                content_type="multipart/form-data"))
            assert body.count(message) == 1, (step, message)  # said once
    body = text_of(client.post("/admin/catalog_file/prices/plan", data=price_form(
        token, providers="openai, bad!name", activate="1"), content_type="multipart/form-data"))
    assert 'value="openai, bad!name"' in body  # kept as typed
    assert re.search(r'id="activate" name="activate" value="1"\s+checked', body)
    body = text_of(client.post("/admin/catalog_file/prices/apply", follow_redirects=True,
                               data=price_form(token, source="genai-prices")))
    assert "Say why" in body
    assert catalog_fingerprint(console) == before


def anthropic_plan(client, token: str) -> tuple[str, str]:
    """The plan page of the test map's anthropic models, and the map it carries."""
    plan = text_of(client.post("/admin/catalog_file/prices/plan", data=price_form(
        token, providers="anthropic", file=(io.BytesIO(DATA.read_bytes()), "map.json")),
        content_type="multipart/form-data"))
    return plan, re.search(r'name="payload" value="([^"]+)"', plan).group(1)


def test_a_price_plan_reviewed_before_another_edit_is_shown_again(console, client):
    token = sign_in(client, "editor")
    plan, payload = anthropic_plan(client, token)
    version = re.search(r'name="plan_version" value="(\d+)"', plan).group(1)
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                  "patch": {"description": "meanwhile"}})
    before = catalog_fingerprint(console)
    form = price_form(token, providers="anthropic", payload=payload, fileName="map.json",
                      reason="anthropic")
    body = text_of(client.post("/admin/catalog_file/prices/apply", follow_redirects=True,
                               data={**form, "plan_version": version}))
    assert "Not applied: the catalog changed since that plan was made" in body
    assert catalog_fingerprint(console) == before
    again = re.search(r'name="plan_version" value="(\d+)"', body).group(1)
    body = text_of(client.post("/admin/catalog_file/prices/apply", follow_redirects=True,
                               data={**form, "plan_version": again}))
    assert "created" in body and "Not applied" not in body
    assert run_as_system(console, "models:getModelById", {"modelId": re.findall(
        r'<tr data-model="(anthropic/[^"]+)"', plan)[0]})


def test_the_confirmation_applies_the_file_that_was_planned(console, client):
    token = sign_in(client, "editor")
    plan, payload = anthropic_plan(client, token)
    assert json.loads(gzip.decompress(base64.b64decode(payload))) == json.loads(
        DATA.read_text())
    created = re.findall(r'<tr data-model="(anthropic/[^"]+)"', plan)
    assert created and 'name="providers" value="anthropic"' in plan
    body = text_of(client.post("/admin/catalog_file/prices/apply", follow_redirects=True,
                               data=price_form(token, providers="anthropic", payload=payload,
                                               fileName="map.json", reason="anthropic")))
    assert f"{len(created)} created" in body
    for model_id in created:
        assert run_as_system(console, "models:getModelById", {"modelId": model_id})
    assert run_as_system(console, "models:getModelById", {"modelId": "openai/gpt-4o-test"}) \
        is None


def test_usage_figures_per_model_over_the_window(console, client):
    """Sums over the window by model, read as the functions read them (both databases)."""
    now = int(time.time() * 1000)
    events = [{"modelId": "luma/ray-2-720p", "generationTime": t, "success": ok, "credits": 3,
               "at": now - 2 * 60_000} for t, ok in ((4, True), (6, True), (8, True),
                                                     (50, False))]
    run_as_system(console, "models:recordGenerations", {"events": events})
    sign_in(client, "viewer")
    body = text_of(client.get("/admin/stats/?range=1h&bucket=minute"))
    row = re.search(r'<tr data-model="luma/ray-2-720p">(.*?)</tr>', body, re.S).group(1)
    cells = dict(re.findall(r'<td class="([a-z0-9-]+)">([^<]*)</td>', row))
    assert cells["generations"] == "4" and cells["success-rate"] == "75.0%"
    assert cells["credits"] == "12"
    usage = run_as_system(console, "models:getUsage", {"modelId": "luma/ray-2-720p",
                                                       "from": now - 3_600_000, "to": now,
                                                       "bucket": "hour"})
    p95 = max(p["p95GenerationTime"] or 0 for p in usage)
    assert cells["p95"] == f"{p95:.3g} s"
    silent = re.search(r'<tr data-model="google/veo-3">(.*?)</tr>', body, re.S).group(1)
    assert "No data" in silent and "%" not in silent


def test_price_changes_can_be_scheduled_from_the_page(console, client, tmp_path):
    token = sign_in(client, "editor")
    original = DATA.read_bytes()
    body = text_of(client.post("/admin/catalog_file/prices/apply", follow_redirects=True,
                               data=price_form(token, providers="openai", reason="first",
                                               activate="1",
                                               file=(io.BytesIO(original), "map.json")),
                               content_type="multipart/form-data"))
    assert "created" in body
    data = json.loads(original)
    data["gpt-4o-test"]["input_cost_per_token"] = 2e-06
    changed = json.dumps(data).encode()
    form = price_form(token, providers="openai", at="2031-01-01T00:00")
    plan = text_of(client.post("/admin/catalog_file/prices/plan", content_type=
                               "multipart/form-data", data={
                                   **form, "file": (io.BytesIO(changed), "map.json")}))
    assert "price changes take effect at 2031-01-01 00:00:00 UTC" in plan
    change = re.search(r'<li class="price-change" data-model="openai/gpt-4o-test">(.*?)</li>',
                       plan, re.S).group(1)
    assert "from 2031-01-01 00:00:00 UTC" in change and "$2.50 → $2.00" in change
    assert 'name="at" value="2031-01-01T00:00"' in plan  # carried on to the confirmation
    payload = re.search(r'name="payload" value="([^"]+)"', plan).group(1)
    text_of(client.post("/admin/catalog_file/prices/apply", data={
        **form, "payload": payload, "reason": "scheduled"}))
    usage = {"inputTokens": 1_000_000}
    now = run_as_system(console, "pricing:quote", {"modelId": "openai/gpt-4o-test",
                                                   "usage": usage})
    later = run_as_system(console, "pricing:quote", {"modelId": "openai/gpt-4o-test",
                                                     "usage": usage, "at": 1_924_992_000_000})
    assert (now["usdExact"], later["usdExact"]) == ("2.5", "2")
    bad = text_of(client.post("/admin/catalog_file/prices/plan", data={
        **price_form(token, at="next tuesday"), "file": (io.BytesIO(changed), "map.json")},
        content_type="multipart/form-data"))
    assert bad.count("reads YYYY-MM-DDTHH:MM") == 1


def test_an_empty_catalog_renders_every_operations_page(app, client):
    create_accounts(app)
    sign_in(client, "admin")
    home = text_of(client.get("/admin/"))
    assert "None: no model is active." in home and "No change yet." in home
    assert "No active model." in home and "No alerts." in home
    assert 'id="chart-generations"' in home and "No data" in home
    assert "No alerts." in text_of(client.get("/admin/alerts/"))
    usage = text_of(client.get("/admin/stats/?range=30d"))
    assert 'id="usage-chart"' in usage and "No data" in usage


def test_a_window_counted_in_whole_buckets_says_which(console, client):
    """By day, "the last 24 hours" counts whole UTC days: the page says which span it counted,
    so figures from 26 hours ago are not read as the last day's."""
    sign_in(client, "viewer")
    body = text_of(client.get("/admin/stats/?range=24h&bucket=day"))
    counted = re.search(r'id="window-counted">(\S+) 00:00:00 to (\S+) 00:00:00 UTC<', body)
    assert counted, body[body.index('id="window-label"'):][:400]
    first, last = (calendar.timegm(time.strptime(day, "%Y-%m-%d")) for day in counted.groups())
    assert last - first == 2 * 86400  # today and yesterday, whole UTC days
    assert "counted in whole days" in body
    exact = text_of(client.get("/admin/stats/?from=2026-01-01T00:00&to=2026-01-03T00:00"
                               "&bucket=day"))
    assert 'id="window-counted"' not in exact


def test_a_price_plan_says_how_many_models_its_entries_make(console, client):
    """Keys that name one model (gpt-4o and openai/gpt-4o) are one model: the plan says how
    many models the entries make, so its counts add up."""
    from functions import sources

    token = sign_in(client, "editor")
    data = json.loads(DATA.read_text())
    data["openai/gpt-4o-test"] = data["gpt-4o-test"]  # a second key for one model
    converted = sources.convert("litellm", data)
    plan = text_of(client.post("/admin/catalog_file/prices/plan", data=price_form(
        token, file=(io.BytesIO(json.dumps(data).encode()), "map.json")),
        content_type="multipart/form-data"))
    shown = re.search(r'id="price-plan-models">([\d,]+) models from ([\d,]+) of them'
                      r'( \(entries that name the same model are one model\))?<', plan)
    assert shown, plan[plan.index('id="price-plan-source"'):][:600]
    assert int(shown.group(1).replace(",", "")) == len(converted.models)
    assert int(shown.group(2).replace(",", "")) == sum(len(m["keys"])
                                                       for m in converted.models)
    assert ["openai/gpt-4o-test", "gpt-4o-test"] in [m["keys"] for m in converted.models]
    assert shown.group(3)
    created = re.findall(r'<tr data-model="([^"]+)"', plan)
    assert created.count("openai/gpt-4o-test") == 1


def test_the_home_page_shows_a_change_of_many_models_as_one(console, client):
    """An import or a bulk action is one line of the latest changes, not a screenful."""
    run_as_system(console, "models:setModelsActive", {
        "isActive": False, "modelIds": ["google/veo-3", "luma/ray-2-720p"], "reason": "tidy"})
    run_as_system(console, "models:updateModel", {"modelId": "google/veo-3",
                                                  "patch": {"name": "Veo"}})
    sign_in(client, "viewer")
    body = text_of(client.get("/admin/"))
    rows = re.findall(r"<tr><td>.*?</tr>", body[body.index('id="latest-changes"'):], re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert "google/veo-3 update (revision" in text[0]
    assert "2 models disable (" in text[1], text[1]
    assert text[1].endswith("tidy")


def test_a_window_of_years_shows_the_days_one_answer_holds(console, client):
    """Years by day, with a model that has data (its charts ask getUsage for the window): the
    last 1,500 days, saying so, never a 500."""
    now = int(time.time() * 1000)
    run_as_system(console, "models:recordGenerations", {"events": [
        {"modelId": "luma/ray-2-720p", "generationTime": 5, "success": True,
         "at": now - 60_000}]})
    sign_in(client, "viewer")
    to = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now / 1000))
    for start in ("2020-01-01T00:00", "2022-10-22T13:37"):
        response = client.get(f"/admin/stats/?from={start}&to={to}&bucket=day")
        body = text_of(response)
        assert response.status_code == 200, start
        assert "Shown: the last 1,500 days." in body and 'id="model-0-volume"' in body
    refused = text_of(client.get(f"/admin/stats/?from={to}&to=2020-01-01T00:00"))
    assert "From must be before To. Shown: last 24 hours." in refused


def test_revoking_a_token_and_deleting_a_webhook_ask_first(console, client):
    """Neither can be undone: each asks on a page of its own, saying what it ends, and is
    done once confirmed; Cancel (a link back) changes nothing."""
    console.config["WEBHOOK_PRIVATE_ADDRESSES"] = "1"
    run_as_system(console, "access:createToken", {"name": "backend", "scopes": ["stats:write"]})
    run_as_system(console, "models:createWebhook", {"name": "pager", "kind": "signed",
                                                    "url": "http://127.0.0.1:9/hook"})
    token = sign_in(client, "admin")
    again = text_of(client.post("/admin/webhooks/retry", follow_redirects=True, data={
        "csrf_token": token, "name": "pager"}))  # a second click, an old page
    assert "pager has no given-up deliveries to send again." in again
    for url, fields, question, effect, listed in (
            ("/admin/tokens/revoke", {"name": "backend"}, "Revoke the token backend?",
             "is refused from its next call", lambda: run_as_system(
                 console, "access:listTokens")[0]["revokedAt"] is None),
            ("/admin/webhooks/delete", {"name": "pager"}, "Delete the webhook pager?",
             "Alerts are no longer sent to http://127.0.0.1:9/hook", lambda: len(
                 run_as_system(console, "models:listWebhooks")) == 1)):
        asked = client.post(url, data={"csrf_token": token, **fields})
        body = asked.get_data(as_text=True)
        assert asked.status_code == 200 and question in body and effect in body, url
        assert 'name="confirmed" value="1"' in body and 'id="cancel"' in body
        assert 'id="reason"' not in body  # (no history to write it in)
        assert listed(), f"{url} acted before it was confirmed"
        done = client.post(url, follow_redirects=True,
                           data={"csrf_token": token, "confirmed": "1", **fields})
        assert done.status_code == 200 and "alert-success" in done.get_data(as_text=True)
        assert not listed(), f"{url} did not act once confirmed"
    for url, name, said in (("/admin/tokens/revoke", "backend", "Revoked backend."),
                            ("/admin/webhooks/delete", "pager", "No webhook named")):
        again = text_of(client.post(url, follow_redirects=True, data={  # nothing left to ask
            "csrf_token": token, "name": name}))
        assert said in again and 'name="confirmed"' not in again, url
