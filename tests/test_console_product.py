"""The console as a product (issue 19), in Chromium: risky actions ask first and record why,
names open details, labels instead of identifiers, forms that keep what was typed, refusals that
name the role, what a viewer sees, and bulk actions on a filtered selection at 5,000 models."""

# The browser fixtures are imported from test_console_browser.py and named as parameters.
# ruff: noqa: F811

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import run_as_system
from tests.test_console_browser import (  # noqa: F401 (fixtures)
    confirm,
    console,
    fill_new_model,
    flash,
    page,
    row,
    sign_in,
)

# The console's pages do not depend on the database: these run on SQLite (the browser tests
# in test_console_browser.py cover PostgreSQL too).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CHAT_PRICE = [{"effectiveFrom": None, "components": [
    {"unit": "input_tokens", "price": "2.5"}, {"unit": "output_tokens", "price": "10"}]}]
EMBEDDING_PRICE = [{"effectiveFrom": None, "components": [
    {"unit": "input_tokens", "price": "0.02"}]}]


def model(app, model_id: str) -> dict:
    return run_as_system(app, "models:getModelById", {"modelId": model_id})


def reasons(app, model_id: str) -> list[tuple[str, str]]:
    """(action, reason) of a model's history, newest first."""
    page = run_as_system(app, "history:getModelHistory", {
        "modelId": model_id, "paginationOpts": {"numItems": 50, "cursor": None}})["page"]
    return [(entry["action"], entry.get("reason") or "") for entry in page]


def controls(page: Page) -> set[str]:
    """What a person can use in the page's main part: each visible link, button and field,
    as `kind: name`."""
    page.wait_for_load_state("load")  # the console's scripts have hidden what they hide
    return set(page.evaluate("""() => Array.from(document.querySelectorAll(
        "main a[href], main button, main input:not([type=hidden]), main select, main textarea"))
      .filter(e => e.getClientRects().length > 0)
      .map(e => e.tagName.toLowerCase() + ": " + (e.getAttribute("aria-label")
        || (e.labels && e.labels.length ? e.labels[0].innerText : "")
        || e.innerText || e.value || e.name || "").replace(/\\s+/g, " ").trim())"""))


# -- risky actions ask first and record why ------------------------------------------------


def test_set_default_says_what_changes_and_records_the_reason(console, page, seeded):
    sign_in(page, console.url)
    row(page, "luma/ray-2-720p").locator("[data-action=set-default]").click()
    expect(page.locator("#confirm-question")).to_have_text("Make Luma Ray-2-720p the default?")
    expect(page.locator("#confirm-effects")).to_have_text(
        "Luma Ray Flash 2-540p stops being the default.")
    assert model(seeded, "luma/ray-2-720p")["isDefault"] is False  # nothing yet
    page.click("#cancel")
    expect(row(page, "luma/ray-flash-2-540p").locator(".status-default")).to_be_visible()
    assert model(seeded, "luma/ray-2-720p")["isDefault"] is False

    row(page, "luma/ray-2-720p").locator("[data-action=set-default]").click()
    confirm(page, "Ray 2 is cheaper for the launch")
    expect(flash(page).first).to_contain_text("luma/ray-2-720p is now the default model")
    expect(row(page, "luma/ray-2-720p").locator(".status-default")).to_be_visible()
    assert reasons(seeded, "luma/ray-2-720p")[0] == ("set-default",
                                                      "Ray 2 is cheaper for the launch")


@pytest.mark.parametrize(("verb", "question", "effect"), [
    ("disable", "Disable Luma Ray-2-720p?", "stops being offered to the frontend"),
    ("delete", "Delete Luma Ray-2-720p?", "they can be restored"),
    ("lock", "Lock Luma Ray-2-720p?", "refuse edits, toggles and deletes"),
])
def test_each_risky_row_action_asks_first(console, page, seeded, verb, question, effect):
    sign_in(page, console.url)
    row(page, "luma/ray-2-720p").locator(f"[data-action={verb}]").click()
    expect(page.locator("#confirm-question")).to_have_text(question)
    expect(page.locator("#confirm-effects")).to_contain_text(effect)
    confirm(page, f"reason to {verb}")
    expect(page.locator("table.model-list")).to_be_visible()
    assert reasons(seeded, "luma/ray-2-720p")[0] == (verb, f"reason to {verb}")


def test_restore_and_unlock_ask_first_too(console, page, seeded):
    run_as_system(seeded, "models:deleteModel", {"modelId": "google/veo-3"})
    run_as_system(seeded, "models:lockModel", {"modelId": "luma/ray-2-720p"})
    sign_in(page, console.url)
    row(page, "google/veo-3").locator("[data-action=restore]").click()
    expect(page.locator("#confirm-effects")).to_contain_text("come back active")
    confirm(page, "deleted by mistake")
    row(page, "luma/ray-2-720p").locator("[data-action=unlock]").click()
    expect(page.locator("#confirm-question")).to_have_text("Unlock Luma Ray-2-720p?")
    confirm(page, "prices settled")
    assert reasons(seeded, "google/veo-3")[0] == ("restore", "deleted by mistake")
    assert reasons(seeded, "luma/ray-2-720p")[0] == ("unlock", "prices settled")


def test_revert_asks_first_and_says_what_goes_back(console, page, seeded):
    run_as_system(seeded, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                 "patch": {"name": "Ray Renamed"}})
    sign_in(page, console.url)
    row(page, "luma/ray-2-720p").locator("a.model-name").click()
    page.locator("tr[data-revision='1'] .revert-link").click()
    expect(page.locator("#confirm-question")).to_have_text("Revert Ray Renamed to revision 1?")
    expect(page.locator("#confirm-effects")).to_contain_text(
        'What goes back:Name: "Ray Renamed" → "Luma Ray-2-720p"')
    confirm(page, "the rename was a mistake")
    expect(page.locator("#model-title")).to_contain_text("Luma Ray-2-720p")
    expect(page.locator("#history-table")).to_contain_text("the rename was a mistake")


def test_bulk_enable_names_what_it_publishes(console, page, seeded):
    run_as_system(seeded, "models:duplicateModel", {"modelId": "google/veo-3",
                                                    "newModelId": "google/veo-3-draft"})
    sign_in(page, console.url)
    page.locator("input.action-rowtoggle").check()
    page.click("text=With selected")
    page.click("a:has-text('Enable…')")
    # the question counts what changes: of the 4 picked, 3 are on already
    expect(page.locator("#confirm-question")).to_have_text("Enable Google Veo-3 (copy)?")
    expect(page.locator("#confirm-effects")).to_contain_text(
        "Google Veo-3 (copy) (google/veo-3-draft) goes live: the frontend offers it, a copy "
        "never enabled before.")
    expect(page.locator("#confirm-effects")).to_contain_text("3 already active: unchanged.")
    expect(page.locator("#confirm-count")).to_have_text("4")
    confirm(page, "the draft is ready")
    expect(row(page, "google/veo-3-draft").locator(".status-active")).to_be_visible()
    assert reasons(seeded, "google/veo-3-draft")[0] == ("enable", "the draft is ready")


def test_a_price_change_shows_its_effect_before_saving(console, page, seeded):
    sign_in(page, console.url, "editor")
    row(page, "luma/ray-2-720p").locator("a[data-action=edit]").click()
    page.fill("#costPerSecond", "0.20")
    page.click("input[type=submit][value=Save]")
    preview = page.locator("#price-preview")
    expect(preview).to_be_visible()
    first = preview.locator("tbody tr").first
    expect(first).to_contain_text("5 s of video")
    expect(first.locator(".old-quote")).to_have_text("$0.90")
    expect(first.locator(".new-quote")).to_have_text("$1.00")
    qualities = model(seeded, "luma/ray-2-720p")["supportedQualities"]
    expect(preview.locator("tbody tr")).to_have_count(1 + len(qualities))  # one per quality
    assert model(seeded, "luma/ray-2-720p")["costPerSecond"] == 0.18  # not saved yet
    expect(page.locator("#costPerSecond")).to_have_value("0.20")  # kept as typed
    page.click("input[type=submit][value=Save]")
    expect(page.locator("table.model-list")).to_be_visible()
    assert model(seeded, "luma/ray-2-720p")["costPerSecond"] == 0.2
    row(page, "luma/ray-2-720p").locator("a.model-name").click()  # history: money, labelled
    expect(page.locator("#history-table tbody tr").first).to_contain_text(
        "Cost per second (USD): $0.18 / s → $0.20 / s")


# -- reading and navigation -----------------------------------------------------------------


def test_a_models_name_opens_its_details(console, page):
    sign_in(page, console.url, "viewer")
    row(page, "google/veo-3").locator("a.model-name").click()
    expect(page.locator("#model-title")).to_contain_text("google/veo-3")
    expect(page.locator("h1")).to_have_count(1)  # its heading once


def test_inline_editing_only_where_it_can_succeed(console, page, seeded):
    run_as_system(seeded, "models:lockModel", {"modelId": "luma/ray-2-720p"})
    sign_in(page, console.url, "editor")
    expect(row(page, "google/veo-3").locator("details.inline-edit")).to_have_count(1)
    expect(row(page, "luma/ray-2-720p").locator("details.inline-edit")).to_have_count(0)
    cell = row(page, "google/veo-3").locator("details.inline-edit")
    cell.locator("summary").click()
    cell.locator("input[name=value]").fill("Flagship")
    cell.locator("input[name=reason]").fill("our best model")
    cell.locator("button").click()
    expect(flash(page).first).to_contain_text("Category of google/veo-3 saved.")
    assert reasons(seeded, "google/veo-3")[0] == ("update", "our best model")
    page.click("#sign-out")
    sign_in(page, console.url, "viewer")
    expect(page.locator("details.inline-edit")).to_have_count(0)


def test_refusals_name_fields_by_their_labels(console, page, seeded):
    sign_in(page, console.url)
    page.goto(f"{console.url}/admin/models/new/")
    fill_new_model(page, qualityMultipliers='{"4k": 2}')
    page.click("input[type=submit][value=Save]")
    banner = flash(page).first
    expect(banner).to_contain_text("Quality multipliers")
    text = page.locator("main").inner_text()
    for identifier in ("qualityMultipliers", "costPerSecond", "modelId"):
        assert identifier not in text, identifier


def test_the_calculator_asks_in_words(console, page, seeded):
    run_as_system(seeded, "models:createModel", {
        "modelId": "openai/gpt-4o", "name": "GPT-4o", "provider": "OpenAI",
        "contentType": "chat", "prices": CHAT_PRICE})
    sign_in(page, console.url, "viewer")
    row(page, "openai/gpt-4o").locator("a.model-name").click()
    expect(page.locator("label[for='usage-inputTokens']")).to_have_text("Input tokens")
    page.fill("#usage-inputTokens", "1000")
    page.fill("#usage-outputTokens", "500")
    page.click("#price-calculator button")
    expect(page.locator("#quote-usd")).to_have_text("$0.0075")
    text = page.locator("main").inner_text()
    assert "inputTokens" not in text and "outputTokens" not in text


def test_the_calculator_shows_every_factor(console, page):
    sign_in(page, console.url, "viewer")
    row(page, "luma/ray-2-720p").locator("a.model-name").click()
    page.select_option("#duration", "9")
    page.select_option("#quality", "standard")
    page.click("#price-calculator button")
    expect(page.locator("#quote")).to_contain_text("9 s × $0.18 / s × 1.0 = $1.62")


# -- forms ------------------------------------------------------------------------------------


def test_a_failing_form_keeps_what_was_typed_and_marks_the_field(console, page, seeded):
    sign_in(page, console.url)
    page.goto(f"{console.url}/admin/models/new/")
    fill_new_model(page, supportedDurations="5, ten", description="Kept as typed")
    page.click("input[type=submit][value=Save]")
    expect(flash(page).first).to_contain_text("Not saved: fix Supported durations (s)")
    expect(page.locator("#supportedDurations")).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(page.locator("#supportedDurations")).to_have_value("5, ten")
    expect(page.locator("#description")).to_have_value("Kept as typed")
    expect(page.locator("#name")).to_have_value("Acme Clip")
    assert model(seeded, "acme/clip-1") is None


def test_durations_take_seconds_and_a_new_model_can_be_the_default(console, page, seeded):
    sign_in(page, console.url)
    page.goto(f"{console.url}/admin/models/new/")
    fill_new_model(page, supportedDurations="5s, 10s")
    page.check("#isDefault")
    page.click("input[type=submit][value=Save]")
    expect(row(page, "acme/clip-1").locator(".status-default")).to_be_visible()
    created = model(seeded, "acme/clip-1")
    assert created["supportedDurations"] == [5, 10] and created["isDefault"] is True


def test_add_a_user_starts_at_the_least_role(console, page):
    sign_in(page, console.url)
    page.goto(f"{console.url}/admin/users/")
    expect(page.locator("#new-role")).to_have_value("viewer")
    for field in ("#new-email", "#new-role", "#new-password"):  # labelled, not placeholders
        label = page.locator(f"label[for='{field[1:]}']")
        expect(label).to_be_visible()
    page.fill("#new-email", "new@example.com")
    page.fill("#new-password", "a long enough password")
    page.click("#create-user button")
    expect(page.locator("tr[data-email='new@example.com']")).to_contain_text("viewer")


# -- permissions ------------------------------------------------------------------------------


@pytest.fixture
def refused_page(browser):
    """A page for answers of 403 (which Chromium logs as errors, as it should)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


def test_a_forbidden_page_is_styled_and_names_the_role(console, refused_page):
    page = refused_page
    sign_in(page, console.url, "viewer")
    answer = page.goto(f"{console.url}/admin/users/")
    assert answer.status == 403
    expect(page.locator("#page-title")).to_have_text("Not allowed with your role")
    expect(page.locator("#needed-role")).to_have_text("admin")
    expect(page.locator("#signed-in-as")).to_be_visible()  # in the console's layout
    page.click("#sign-out")
    sign_in(page, console.url, "editor")
    answer = page.goto(f"{console.url}/admin/models/confirm/lock/?rowid=2")
    assert answer.status == 403
    expect(page.locator("#forbidden")).to_contain_text("Lock")
    expect(page.locator("#needed-role")).to_have_text("admin")
    expect(page.locator("#forbidden")).to_contain_text("editor@example.com, an editor.")


def test_a_viewer_opening_an_edit_url_is_told_why(console, page):
    sign_in(page, console.url, "viewer")
    page.goto(f"{console.url}/admin/models/edit/?id=2")
    expect(page).to_have_url(re.compile(r"/admin/models/$"))
    expect(flash(page).first).to_contain_text(
        "Editing a model needs the editor or admin role; you are a viewer")


def test_what_a_viewer_sees(console, page):
    """Exactly the controls that read: no create, edit, action, bulk, reason or revert."""
    sign_in(page, console.url, "viewer")
    names = {"Google Veo-3", "Luma Ray-2-720p", "Luma Ray Flash 2-540p"}
    listed = controls(page)
    assert listed == {
        "a: List (3)", "a: Add Filter", "a: 20 items", "input: Search models", "button: Search",
        "a: Model id", "a: Name", "a: Provider", "a: Content type",  # sort by
        *(f"a: {name}" for name in names), *(f"a: View {name}" for name in names),
    }, listed
    row(page, "luma/ray-2-720p").locator("a.model-name").click()
    details = controls(page)
    assert details == {
        "a: List", "a: Details", "a: History", "select: Duration", "select: Quality",
        "button: Quote",
    }, details


# -- the console at catalog scale ---------------------------------------------------------------


def grow(app, count: int = 5000) -> dict[str, int]:
    """Add `count` inactive models (chat and embedding from three providers, and video) in
    one catalog apply; answers how many of each (provider, kind) there are."""
    catalog = run_as_system(app, "catalog:exportCatalog")
    video = catalog["models"][1]
    others = [("Anthropic", "chat"), ("OpenAI", "embedding"), ("Acme", "video")]
    made: dict[str, int] = {}
    for i in range(count):  # 37 OpenAI chat models, then the others in turn
        provider, kind = ("OpenAI", "chat") if i < 37 else others[i % len(others)]
        made[f"{provider} {kind}"] = made.get(f"{provider} {kind}", 0) + 1
        entry = {"modelId": f"{provider.lower()}/{kind}-{i:04d}",
                 "name": f"{provider} {kind} {i:04d}", "provider": provider,
                 "contentType": kind, "isActive": False, "isDefault": False}
        if kind == "video":
            entry = {**video, **entry}
        else:
            entry.update(prices=CHAT_PRICE if kind == "chat" else EMBEDDING_PRICE,
                         capabilities=["tools"] if kind == "chat" else [])
        catalog["models"].append(entry)
    run_as_system(app, "catalog:applyCatalog", {"catalog": catalog, "reason": "scale"})
    return made


def test_at_5000_models_a_filtered_selection_is_enabled_in_a_few_clicks(console, page, seeded):
    made = grow(seeded)
    openai_chat = made["OpenAI chat"]
    sign_in(page, console.url)
    # the list is paged by the server: a page of 20 of all of them
    expect(page.locator("main .nav-link.active")).to_have_text(f"List ({5003:,})")
    expect(page.locator("table.model-list tbody tr")).to_have_count(20)
    # the filters are pick-lists of the values that exist
    groups = json.loads(page.locator("#filter-groups-data").text_content())
    provider = groups["Provider"][0]
    assert [value for value, _ in provider["options"]] == [
        "Acme", "Anthropic", "Google", "Luma", "OpenAI"]
    kind = groups["Content type"][0]
    assert [value for value, _ in kind["options"]] == ["chat", "embedding", "video"]
    capabilities = [value for value, _ in groups["Capabilities"][0]["options"]]
    assert "tools" in capabilities and "web_search" not in capabilities  # none has it
    # OpenAI's chat models, then "Enable all" for the selection: the count first, a reason
    page.goto(f"{console.url}/admin/models/?flt0_{provider['arg']}=OpenAI"
              f"&flt1_{kind['arg']}=chat")
    expect(page.locator("#matching-count")).to_have_text(str(openai_chat))
    page.click("[data-matching=enable]")
    expect(page.locator("#confirm-question")).to_have_text(f"Enable {openai_chat} models?")
    expect(page.locator("#confirm-models li")).to_have_count(11)  # ten named, the rest counted
    expect(page.locator("#confirm-models")).to_contain_text(f"… and {openai_chat - 10} more")
    confirm(page, "launch OpenAI chat")
    expect(flash(page).first).to_contain_text(f"{openai_chat} models enabled")
    active = run_as_system(seeded, "models:getActiveModels")
    enabled = {m["modelId"] for m in active if m["provider"] == "OpenAI"}
    assert len(enabled) == openai_chat and all("/chat-" in m for m in enabled)
    assert reasons(seeded, sorted(enabled)[0])[0] == ("enable", "launch OpenAI chat")
    # deleting one by one takes a narrower selection
    page.goto(f"{console.url}/admin/models/?search=a")
    page.click("[data-matching=delete]")
    expect(flash(page).first).to_contain_text("Delete works on at most 500 models at a time")
    # search and sort are the server's too
    page.goto(f"{console.url}/admin/models/?search=-4999")
    expect(page.locator("table.model-list tbody tr")).to_have_count(1)
    page.goto(f"{console.url}/admin/models/")
    page.click("th a:has-text('Model id')")
    expect(page.locator("table.model-list tbody tr").first).to_contain_text("acme/video-0038")
    page.click("th a:has-text('Model id')")
    expect(page.locator("table.model-list tbody tr").first).to_contain_text(
        "openai/embedding-4999")
