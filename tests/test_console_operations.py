"""The operator's pages in a real browser (Playwright driving Debian's Chromium, gunicorn):
the home dashboard (health, alerts, the last 24 h), the Usage page, and the Import page's
price maps and catalog files."""
# ruff: noqa: F811 - the page fixture is imported from test_console_browser

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import run_as_system
from tests.console import create_accounts
from tests.test_console_browser import page, sign_in  # noqa: F401

DATA = Path(__file__).parent / "data" / "litellm_prices.json"
MINUTE = 60_000
HOUR = 60 * MINUTE

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def ops(seeded, gunicorn):
    """The console under gunicorn with no monitor thread: the tests evaluate health
    themselves, so every alert is one they caused."""
    create_accounts(seeded)
    return gunicorn(seeded.config["DATABASE_URL"], workers=2, MONITOR_INTERVAL_SECONDS="0")


def record(app, model_id: str, successes: int, failures: int, at: int, seconds: float = 20,
           credits: int = 10) -> None:
    events = [{"modelId": model_id, "generationTime": seconds + i % 5, "success": True,
               "credits": credits, "at": at - i * 1000} for i in range(successes)]
    events += [{"modelId": model_id, "generationTime": seconds, "success": False,
                "errorCode": "TIMEOUT", "at": at - i * 1000} for i in range(failures)]
    run_as_system(app, "models:recordGenerations", {"events": events})


def sign_in_at(page: Page, base: str, role: str, path: str) -> None:
    sign_in(page, base, role)
    page.goto(f"{base}{path}")


def svg_texts(page: Page, chart: str, cls: str) -> list[str]:
    return page.locator(f"svg#{chart} text.{cls}").all_text_contents()


# -- the home dashboard --------------------------------------------------------------------


def test_dashboard_shows_health_alerts_and_the_last_day(ops, page, seeded, browser):
    at = int(time.time() * 1000) - MINUTE
    if at % HOUR < 30_000:  # the 30 failures, a second apart, fill one hourly bar (of 30)
        at -= at % HOUR + 1000
    record(seeded, "google/veo-3", successes=10, failures=30, at=at)
    record(seeded, "luma/ray-2-720p", successes=25, failures=0, at=at, credits=4)
    evaluated = run_as_system(seeded, "health:evaluateHealth", {})
    assert {a["modelId"]: a["to"] for a in evaluated["alerts"]} == {
        "google/veo-3": "failing", "luma/ray-2-720p": "healthy"}

    # A viewer sees the alert, and no control to acknowledge it.
    viewer_context = browser.new_context()
    viewer = viewer_context.new_page()
    try:
        sign_in_at(viewer, ops.url, "viewer", "/admin/")
        alert = viewer.locator("#open-alerts tr[data-model='google/veo-3']")
        expect(alert).to_contain_text("unknown")
        expect(alert).to_contain_text("failing")
        expect(alert.locator(".ack")).to_have_text("not yet")
        expect(viewer.locator("[data-action=acknowledge]")).to_have_count(0)
    finally:
        viewer_context.close()

    sign_in_at(page, ops.url, "editor", "/admin/")
    # what is failing, first
    expect(page.locator("#failing li[data-model='google/veo-3']")).to_contain_text(
        "success rate 25.0% of 40 generations")
    expect(page.locator("#failing li")).to_have_count(1)
    # every active model's health, with its badge
    health = page.locator("#health-table")
    expect(health.locator("tr[data-model='google/veo-3'] .health-badge")).to_have_text("failing")
    expect(health.locator("tr[data-model='luma/ray-2-720p'] .health-badge")).to_have_text(
        "healthy")
    flash_row = health.locator("tr[data-model='luma/ray-flash-2-540p']")
    expect(flash_row.locator(".health-badge")).to_have_text("unknown")
    expect(flash_row).to_contain_text("No data")
    expect(flash_row).not_to_contain_text("0.0%")
    expect(page.locator("#health-counts [data-state=failing]").last).to_have_text("1")
    # the default, models by state, the latest changes
    expect(page.locator("#default-model")).to_have_text("Luma Ray Flash 2-540p")
    expect(page.locator("#model-states [data-state=active]")).to_have_text("3")
    expect(page.locator("#model-states [data-state=deleted]")).to_have_text("0")
    expect(page.locator("#latest-changes tbody tr").first).to_contain_text("seed")
    # the last 24 hours, as charts with axes, units and labels, and as a table
    expect(page.locator("#day-totals")).to_contain_text("65 generations, 30 failures, 200 credits")
    for chart, axis in (("chart-generations", "Generations"), ("chart-failures", "Failures"),
                        ("chart-credits", "Credits")):
        svg = page.locator(f"svg#{chart}")
        expect(svg).to_be_visible()
        assert svg.get_attribute("role") == "img"
        expect(svg.locator("title").first).to_contain_text("last 24 hours")
        assert svg_texts(page, chart, "y-title") == [axis]
        assert svg_texts(page, chart, "x-title") == ["Time (UTC), per hour"]
        assert len(svg_texts(page, chart, "x-tick")) >= 4
        assert svg_texts(page, chart, "y-tick")[0] == "0"
        expect(svg.locator("rect.bar")).not_to_have_count(0)
    assert svg_texts(page, "chart-failures", "y-tick")[-1] == "30"
    page.locator("#day-heading ~ details summary").click()
    expect(page.locator("#day-table")).to_contain_text("65")

    # acknowledge the alert, through the mutation; it leaves the open alerts
    page.locator("#open-alerts tr[data-model='google/veo-3'] [data-action=acknowledge]").click()
    expect(page.locator(".alert-success")).to_contain_text("Alert acknowledged")
    expect(page.locator("#open-alerts tr[data-model='google/veo-3']")).to_have_count(0)
    listed = run_as_system(seeded, "models:listAlerts", {
        "paginationOpts": {"numItems": 10, "cursor": None}, "modelId": "google/veo-3"})
    assert listed["page"][0]["acknowledgedBy"] == "editor@example.com"

    # the Alerts page keeps the history, acknowledged or not
    page.click("text=All alerts and their history")
    history = page.locator("#alerts-table tr[data-model='google/veo-3']")
    expect(history).to_contain_text("by editor@example.com")
    page.click("#alert-filter >> text=Open only")
    expect(page.locator("#alerts-table tr[data-model='google/veo-3']")).to_have_count(0)
    expect(page.locator("#alerts-table tr[data-model='luma/ray-2-720p']")).to_have_count(1)
    page.locator("#alerts-table tr[data-model='luma/ray-2-720p'] "
                 "[data-action=acknowledge]").click()
    expect(page.locator(".alert-success")).to_contain_text("Alert acknowledged")
    expect(page.locator("#alerts-table")).to_contain_text("No alerts.")
    expect(page).to_have_url(re.compile(r"/admin/alerts/\?show=open"))


# -- usage over time -----------------------------------------------------------------------


def test_usage_page_switches_range_and_bucket_and_says_no_data(ops, page, seeded):
    now = int(time.time() * 1000)
    record(seeded, "google/veo-3", successes=6, failures=2, at=now - 10 * MINUTE, seconds=30)
    record(seeded, "google/veo-3", successes=4, failures=0, at=now - 3 * 60 * MINUTE)
    record(seeded, "luma/ray-2-720p", successes=3, failures=1, at=now - 5 * MINUTE, seconds=8)
    sign_in_at(page, ops.url, "viewer", "/admin/stats/")

    table = page.locator("#usage-table")
    expect(page.locator("#window-label")).to_contain_text("Last 24 hours, by hour")
    expect(table.locator("tbody tr")).to_have_count(3)
    veo = table.locator("tr[data-model='google/veo-3']")
    expect(veo.locator(".generations")).to_have_text("12")
    expect(veo.locator(".success-rate")).to_have_text("83.3%")
    expect(veo.locator(".p95")).to_contain_text(" s")
    silent = table.locator("tr[data-model='luma/ray-flash-2-540p']")
    expect(silent.locator(".success-rate")).to_have_text("No data")
    expect(silent).not_to_contain_text("0.0%")
    expect(page.locator("section.model-usage[data-model='luma/ray-flash-2-540p']")).to_contain_text(
        "No data in this window")
    # sorted by generations, most first; models without data last
    assert table.locator("tbody tr").first.get_attribute("data-model") == "google/veo-3"
    assert table.locator("tbody tr").last.get_attribute("data-model") == "luma/ray-flash-2-540p"

    # per-model charts: volume, success rate (0-100%), p50/p95 in seconds
    section = page.locator("section.model-usage[data-model='google/veo-3']")
    charts = section.locator("svg")
    expect(charts).to_have_count(3)
    expect(charts.nth(1).locator("text.y-tick").last).to_have_text("100%")
    expect(charts.nth(2).locator("text.y-title")).to_have_text("Generation time (s)")
    expect(charts.nth(2).locator("text.legend")).to_have_text(["p50", "p95"])
    expect(charts.nth(0).locator("title").first).to_contain_text("generations per hour")

    # the last hour, by minute: the older generations leave, the axis says minutes
    page.select_option("#range", "1h")
    page.select_option("#bucket", "minute")
    page.click("#show-window")
    expect(page).to_have_url(re.compile(r"range=1h"))
    expect(page.locator("#window-label")).to_contain_text("Last hour, by minute")
    expect(veo.locator(".generations")).to_have_text("8")
    expect(veo.locator(".success-rate")).to_have_text("75.0%")
    expect(page.locator("svg#usage-chart text.x-title")).to_have_text("Time (UTC), per minute")

    # sort by success rate, lowest first: Ray (75.0%) ties Veo; then by name
    page.click("#usage-table a[data-sort=successRate]")  # most first
    page.click("#usage-table a[data-sort=successRate]")  # then least first
    expect(page.locator("#usage-table th[aria-sort=ascending]")).to_contain_text("Success rate")
    assert table.locator("tbody tr").last.get_attribute("data-model") == "luma/ray-flash-2-540p"

    # seven days by minute would be 10,080 points: shown by hour, and said so
    page.select_option("#range", "7d")
    page.select_option("#bucket", "minute")
    page.click("#show-window")
    expect(page.locator("#window-note")).to_contain_text("shown by hour")
    expect(page.locator("#bucket")).to_have_value("hour")

    # each model links to its details page
    table.locator("tr[data-model='google/veo-3'] a").first.click()
    expect(page).to_have_url(re.compile(r"/admin/models/details/\?id=\d+"))
    expect(page.locator("#model-title")).to_contain_text("google/veo-3")


# -- webhooks ------------------------------------------------------------------------------


def test_webhooks_are_added_watched_and_changed_from_their_page(seeded, gunicorn, page):
    """An admin adds a signed webhook (its secret shown once), sees why its delivery failed,
    sends it again once it was given up, switches it off, fixes the URL (the old URL's failure
    goes) and deletes it (once asked); a refused URL says why and keeps what was typed."""
    create_accounts(seeded)
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, MONITOR_INTERVAL_SECONDS="0",
                      WEBHOOK_PRIVATE_ADDRESSES="1")
    seeded.config["WEBHOOK_PRIVATE_ADDRESSES"] = "1"
    sign_in_at(page, server.url, "admin", "/admin/webhooks/")
    expect(page.locator("#no-webhooks")).to_be_visible()
    page.fill("#webhook-name", "pager")
    page.select_option("#webhook-kind", "signed")
    page.fill("#webhook-url", "http://user:secret@127.0.0.1:9/hook")
    page.click("#create-webhook button[type=submit]")
    expect(page.locator(".alert-danger")).to_contain_text("would not be sent")
    expect(page.locator("#webhook-url")).to_have_value("http://user:secret@127.0.0.1:9/hook")
    expect(page.locator("#webhook-kind")).to_have_value("signed")
    page.fill("#webhook-url", "http://127.0.0.1:9/hook")  # the discard port: nothing listens
    page.click("#create-webhook button[type=submit]")
    secret = page.locator("#new-secret code").text_content()
    assert len(secret) >= 32
    row = page.locator("tr[data-webhook=pager]")
    expect(row.locator(".last-failure")).to_have_text("none")

    now = int(time.time() * 1000)
    record(seeded, "google/veo-3", successes=0, failures=30, at=now - MINUTE)
    run_as_system(seeded, "health:evaluateHealth", {})
    with seeded.app_context():
        from functions import monitor

        (outcome,) = monitor.deliver(int(time.time() * 1000) + 1000, timeout=5)
    assert outcome["state"] == "pending"
    page.goto(f"{server.url}/admin/webhooks/")
    expect(page.locator("#new-secret")).to_have_count(0)  # shown once
    expect(row.locator(".deliveries")).to_have_text("1 pending, 0 delivered, 0 failed")
    expect(row.locator(".last-failure code")).to_contain_text("ConnectionRefusedError")
    expect(row.locator(".last-failure")).to_contain_text("after 1 attempt; next attempt")

    seeded.config["WEBHOOK_MAX_ATTEMPTS"] = 2
    with seeded.app_context():
        (outcome,) = monitor.deliver(outcome["nextAttemptAt"], timeout=5)
    assert outcome["state"] == "failed"
    page.goto(f"{server.url}/admin/webhooks/")
    expect(row.locator(".deliveries")).to_contain_text("0 pending, 0 delivered, 1 failed")
    expect(row.locator(".last-failure")).to_contain_text("after 2 attempts; given up")
    row.get_by_role("button", name="Retry 1 given up of pager").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "1 given-up delivery to pager will be sent again now.")
    expect(row.locator(".deliveries")).to_have_text("1 pending, 0 delivered, 0 failed")
    expect(row.locator(".last-failure")).to_contain_text("sent again on request; next attempt")

    row.get_by_role("button", name="Switch off pager").click()
    expect(row.locator("td").nth(2)).to_have_text("off")
    expect(row.locator(".last-failure")).to_contain_text("waiting: the webhook is off")
    row.locator("input[name=url]").fill("http://127.0.0.1:9/other")
    row.get_by_role("button", name="Save URL of pager").click()
    expect(page.locator(".alert-success")).to_contain_text("Saved pager.")
    expect(row.locator("input[name=url]")).to_have_value("http://127.0.0.1:9/other")
    # the old URL's failure no longer describes the webhook
    expect(row.locator(".last-failure")).to_have_text("none")
    row.get_by_role("button", name="Delete pager").click()
    expect(page.locator("#confirm-question")).to_have_text("Delete the webhook pager?")
    expect(page.locator("#confirm-effects")).to_contain_text("1 pending delivery will never")
    page.click("#cancel")
    expect(row.locator(".deliveries")).to_have_text("1 pending, 0 delivered, 0 failed")
    row.get_by_role("button", name="Delete pager").click()
    page.click("#confirm")
    expect(page.locator(".alert-success")).to_contain_text("Deleted pager")
    expect(page.locator("#no-webhooks")).to_be_visible()
    assert run_as_system(seeded, "models:listWebhooks", {}) == []


# -- the Import page: public price maps ----------------------------------------------------


def test_litellm_upload_is_planned_grouped_and_applied_with_a_reason(ops, page, seeded,
                                                                      tmp_path):
    sign_in_at(page, ops.url, "editor", "/admin/catalog_file/")
    page.check("#source-litellm")
    page.set_input_files("#price-file", str(DATA))
    # The plan takes a moment: once submitted, the form says it is planning and cannot be sent
    # twice (seen here with the navigation stopped by a listener that runs after the page's).
    page.evaluate("document.getElementById('price-form').addEventListener("
                  "'submit', (event) => event.preventDefault())")
    page.click("#price-form button[type=submit]")
    expect(page.locator("#price-form .busy-state")).to_be_visible()
    expect(page.locator("#price-form .busy-state")).to_contain_text("Planning…")
    expect(page.locator("#price-form button[type=submit]")).to_be_disabled()
    page.reload()
    page.check("#source-litellm")
    page.set_input_files("#price-file", str(DATA))
    expect(page.locator("#price-form .busy-state")).to_be_hidden()
    page.click("#price-form button[type=submit]")

    counts = page.locator("#price-plan-counts")
    expect(counts.locator("[data-count=created]")).to_have_text("50")
    expect(counts.locator("[data-count=notRepresentable]")).to_have_text("6")
    expect(page.locator("#price-plan-source")).to_contain_text("61 entries read")
    expect(page.locator("#group-created tr[data-model='openai/dall-e-3']")).to_contain_text(
        "image")
    page.locator("#group-not-representable > summary").click()
    reasons = page.locator("#not-representable-reasons tbody tr")
    assert sum(int(n) for n in reasons.locator("td:first-child").all_inner_texts()) >= 6
    page.locator("#not-representable-list > summary").click()
    expect(page.locator("#not-representable-list li")).to_have_count(6)
    assert run_as_system(seeded, "models:getModelById", {"modelId": "openai/gpt-4o-test"}) is None

    page.fill("#price-reason", "first LiteLLM import")
    page.click("#price-apply-form button[type=submit]")
    expect(page.locator(".alert-success")).to_contain_text("Imported from litellm: 50 created")
    model = run_as_system(seeded, "models:getModelById", {"modelId": "openai/gpt-4o-test"})
    assert model is not None and model["isActive"] is False
    history = run_as_system(seeded, "history:getModelHistory", {
        "modelId": "openai/gpt-4o-test", "paginationOpts": {"numItems": 5, "cursor": None}})
    assert history["page"][0]["source"] == "import:litellm"
    assert history["page"][0]["reason"] == "first LiteLLM import"
    assert history["page"][0]["actor"] == "editor@example.com"

    # A new map: a price changes, and a name edited here since is kept.
    run_as_system(seeded, "models:updateModel", {"modelId": "openai/o3-test",
                                                 "patch": {"name": "Our O3"}})
    data = json.loads(DATA.read_text())
    data["gpt-4o-test"]["input_cost_per_token"] = 2e-06
    data["o3-test"]["input_cost_per_token"] = 3e-06
    changed = tmp_path / "model_prices_and_context_window.json"
    changed.write_text(json.dumps(data))
    page.check("#source-litellm")
    page.set_input_files("#price-file", str(changed))
    page.click("#price-form button[type=submit]")
    expect(counts.locator("[data-count=created]")).to_have_text("0")
    expect(counts.locator("[data-count=priceChanges]")).to_have_text("2")
    change = page.locator("#group-prices li.price-change[data-model='openai/gpt-4o-test']")
    expect(change).to_contain_text("per 1M input tokens: $2.50 → $2.00")
    expect(change.locator(".change-percent")).to_have_text("-4.0%")
    expect(page.locator("#group-local-edits li.local-edit[data-model='openai/o3-test']")
           ).to_contain_text("keeps name")
    page.fill("#price-reason", "LiteLLM update")
    page.click("#price-apply-form button[type=submit]")
    expect(page.locator(".alert-success")).to_contain_text("2 price changes")
    assert run_as_system(seeded, "models:getModelById",
                         {"modelId": "openai/o3-test"})["name"] == "Our O3"


def test_a_map_over_the_request_limit_is_compressed_in_the_browser(ops, page, tmp_path):
    """LiteLLM's whole map (about 3.5 MB) is over the 1 MiB a request may carry: the page
    gzips a large file before sending it, and the server reads it back."""
    entry = json.loads(DATA.read_text())["gpt-4o-test"]
    big = {f"bulk-model-{i}": {**entry, "input_cost_per_token": (i + 1) * 1e-7}
           for i in range(1700)}
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(big, indent=2))
    assert path.stat().st_size > 1024 * 1024
    sign_in_at(page, ops.url, "editor", "/admin/catalog_file/")
    page.check("#source-litellm")
    page.set_input_files("#price-file", str(path))
    page.click("#price-form button[type=submit]")
    # sent compressed (uncompressed, the request would have been refused with 413)
    expect(page.locator("#price-plan-source")).to_contain_text(
        "File model_prices_and_context_window.json.gz")
    expect(page.locator("#price-plan-counts [data-count=created]")).to_have_text("1,700")
    expect(page.locator("#group-created")).to_contain_text("The first 500 of 1700 are listed")
    expect(page.locator("#price-plan-source")).to_contain_text("1,700 entries read")


def test_genai_prices_are_planned_and_applied_from_the_page(ops, page, seeded):
    sign_in_at(page, ops.url, "editor", "/admin/catalog_file/")
    page.check("#source-genai-prices")
    page.fill("#providers", "anthropic")
    page.check("#activate")
    page.click("#price-form button[type=submit]")
    expect(page.locator("#price-plan-heading")).to_contain_text("genai-prices")
    created = int(page.locator("#price-plan-counts [data-count=created]").inner_text())
    assert created > 5
    expect(page.locator("#price-plan-source")).to_contain_text("providers anthropic")
    expect(page.locator("#price-plan-source")).to_contain_text("New models will be active")
    ids = page.locator("#group-created tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.model)")
    assert ids and all(i.startswith("anthropic/") for i in ids)

    page.fill("#price-reason", "anthropic from genai-prices")
    page.click("#price-apply-form button[type=submit]")
    expect(page.locator(".alert-success")).to_contain_text(f"{created} created")
    one = ids[0]
    model = run_as_system(seeded, "models:getModelById", {"modelId": one})
    assert model["isActive"] is True
    entry = run_as_system(seeded, "history:getModelHistory", {
        "modelId": one, "paginationOpts": {"numItems": 1, "cursor": None}})["page"][0]
    assert (entry["source"], entry["reason"]) == ("import:genai-prices",
                                                  "anthropic from genai-prices")


def test_a_viewer_sees_no_import_controls(ops, page):
    sign_in_at(page, ops.url, "viewer", "/admin/catalog_file/")
    expect(page.locator("#download")).to_be_visible()
    expect(page.locator("#imports-need-editor")).to_contain_text("editor or admin role")
    expect(page.locator("form")).to_have_count(1)  # only signing out
    expect(page.locator("#sign-out")).to_be_visible()


# -- the Import page: catalog files --------------------------------------------------------


def test_catalog_file_deactivation_is_counted_once_and_errors_are_listed_once(ops, page, seeded,
                                                                             tmp_path):
    catalog = run_as_system(seeded, "catalog:exportCatalog")
    ray = next(m for m in catalog["models"] if m["modelId"] == "luma/ray-2-720p")
    ray["isActive"] = False
    ray["name"] = "Ray 2 (retired)"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    sign_in_at(page, ops.url, "editor", "/admin/catalog_file/")
    page.set_input_files("#catalog-file", str(path))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#plan-counts")).to_contain_text(
        "0 to create, 0 to change, 1 to deactivate, 2 unchanged")
    expect(page.locator("#plan li.plan-change")).to_have_count(0)
    deactivate = page.locator("#plan li.plan-deactivate")
    expect(deactivate).to_have_count(1)
    expect(deactivate).to_contain_text("Ray 2 (retired)")
    expect(deactivate).not_to_contain_text("isActive")

    # Locked meanwhile: the apply is refused, and only now does the page say nothing was applied.
    run_as_system(seeded, "models:lockModel", {"modelId": "luma/ray-2-720p"})
    page.fill("#file-reason", "retire Ray 2")
    page.click("#apply-form button[type=submit]")
    errors = page.locator("#file-errors")
    expect(errors).to_contain_text("1 error: nothing was applied.")
    expect(errors).to_contain_text("unlock on luma/ray-2-720p needs the admin role")
    assert errors.inner_text().count("needs the admin role") == 1
    run_as_system(seeded, "models:unlockModel", {"modelId": "luma/ray-2-720p"})

    page.set_input_files("#catalog-file", str(path))
    page.click("#upload-form button[type=submit]")
    page.fill("#file-reason", "retire Ray 2")
    page.click("#apply-form button[type=submit]")
    expect(page.locator(".alert-success")).to_contain_text(
        "Applied: 0 created, 0 changed, 1 deactivated.")
    model = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert model["isActive"] is False and model["name"] == "Ray 2 (retired)"

    # A file with errors: each listed once; the plan was not made, nothing claims an apply.
    catalog["models"][0]["supportedDurations"] = []
    catalog["models"][2]["costPerSecond"] = -1
    path.write_text(json.dumps(catalog))
    page.set_input_files("#catalog-file", str(path))
    page.click("#upload-form button[type=submit]")
    expect(errors).to_contain_text("2 errors: the plan cannot be made")
    expect(errors).not_to_contain_text("nothing was applied")
    expect(page.locator("#error-list li")).to_have_count(2)
    expect(page.locator("#error-list li").first).to_contain_text("models[0].supportedDurations")
    assert errors.inner_text().count("entry 0 ") == 1  # not also repeated in a summary line
