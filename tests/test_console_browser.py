"""The console in a real browser: Playwright driving Debian's Chromium, against gunicorn."""

from __future__ import annotations

import json
import re

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.conftest import run_as_system
from tests.console import ACCOUNTS, PASSWORD, create_accounts


@pytest.fixture
def console(seeded, gunicorn):
    create_accounts(seeded)
    return gunicorn(seeded.config["DATABASE_URL"], workers=2)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []

    def on_console(message) -> None:
        # Only the console's own pages count (the test OIDC provider's page loads from a CDN).
        if message.type == "error" and message.location.get("url", "").startswith(
                "http://127.0.0.1"):
            errors.append(f"{message.text} at {message.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], f"browser errors: {errors}"


def sign_in(page: Page, base: str, role: str = "admin") -> None:
    page.goto(f"{base}/admin/models/")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    page.fill("#email", ACCOUNTS[role])
    page.fill("#password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/models/"))
    # loaded, scripts run: a click binds, and no request of this page is still in flight
    # (one would take a message flashed by the next page)
    page.wait_for_load_state("load")


def row(page: Page, model_id: str):
    return page.locator("table.model-list tbody tr", has_text=model_id)


def flash(page: Page):
    return page.locator(".alert")


def open_details(page: Page, base: str, model_id: str) -> None:
    page.goto(f"{base}/admin/models/?search={model_id}")
    row(page, model_id).locator("a[data-action=view]").click()
    expect(page.locator("#model-title")).to_contain_text(model_id)


def fill_new_model(page: Page, **fields: str) -> None:
    """Fill the create form: a valid model, with `fields` overriding its values."""
    values = {"modelId": "acme/clip-1", "name": "Acme Clip", "provider": "Acme",
              "costPerSecond": "0.10", "supportedDurations": "5, 10",
              "supportedQualities": "standard, high", **fields}
    for name, value in values.items():
        page.fill(f"#{name}", value)


def confirm(page: Page, reason: str = "") -> None:
    """Answer a risky action's confirmation page (it says what will happen) with a reason."""
    expect(page.locator("#confirm-question")).to_be_visible()
    if reason:
        page.fill("#reason", reason)
    page.click("#confirm")


def quote(page: Page, duration: str, quality: str) -> str:
    page.select_option("#duration", duration)
    page.select_option("#quality", quality)
    page.click("#price-calculator button")
    return page.locator("#quote-credits").inner_text()


def test_admin_runs_the_catalog_from_the_browser(console, page):
    base = console.url
    sign_in(page, base)
    expect(page.locator("#signed-in-as")).to_contain_text("admin@example.com")

    # create a model
    page.click("text=Create")
    fill_new_model(page, qualityMultipliers='{"high": 1.5}')
    page.click("input[type=submit][value=Save]")
    expect(row(page, "acme/clip-1")).to_contain_text("$0.10 / s")

    # edit its price and see the quote change, every factor shown
    open_details(page, base, "acme/clip-1")
    assert quote(page, "10", "high") == "150"
    expect(page.locator("#quote")).to_contain_text("10 s × $0.10 / s × 1.5")
    expect(page.locator("#quote-usd")).to_have_text("$1.50")
    page.click("#edit-link")
    page.fill("#costPerSecond", "0.12")
    page.fill("#reason", "supplier raised prices")
    page.click("input[type=submit][value=Save]")
    expect(page.locator("#price-preview")).to_be_visible()  # the price's effect, then Save
    page.click("input[type=submit][value=Save]")
    open_details(page, base, "acme/clip-1")
    assert quote(page, "10", "high") == "180"
    expect(page.locator("#history-table")).to_contain_text("supplier raised prices")

    # soft-delete and restore
    page.goto(f"{base}/admin/models/")
    row(page, "acme/clip-1").locator("[data-action=delete]").click()
    confirm(page)
    expect(row(page, "acme/clip-1")).to_contain_text("Deleted")
    row(page, "acme/clip-1").locator("[data-action=restore]").click()
    confirm(page)
    expect(row(page, "acme/clip-1").locator(".status-active")).to_be_visible()

    # set a new default: the old one visibly loses it
    expect(row(page, "luma/ray-flash-2-540p").locator(".status-default")).to_be_visible()
    row(page, "acme/clip-1").locator("[data-action=set-default]").click()
    confirm(page)
    expect(row(page, "acme/clip-1").locator(".status-default")).to_be_visible()
    expect(row(page, "luma/ray-flash-2-540p").locator(".status-default")).to_have_count(0)

    # lock: no edit controls, and editing is refused
    row(page, "luma/ray-2-720p").locator("[data-action=lock]").click()
    confirm(page)
    locked = row(page, "luma/ray-2-720p")
    expect(locked.locator(".status-locked")).to_be_visible()
    expect(locked.locator("a[data-action=edit]")).to_have_count(0)
    model_pk = locked.locator("input.action-checkbox").get_attribute("value")
    page.goto(f"{base}/admin/models/edit/?id={model_pk}")
    expect(page.locator("#locked-notice")).to_be_visible()
    expect(flash(page).first).to_contain_text("locked")

    # bulk disable: the locked one is skipped and reported, the default stays on
    page.goto(f"{base}/admin/models/")
    for model_id in ["google/veo-3", "luma/ray-2-720p", "luma/ray-flash-2-540p"]:
        row(page, model_id).locator("input.action-checkbox").check()
    page.click("text=With selected")
    page.click("a:has-text('Disable')")
    confirm(page)
    expect(page.locator(".alert", has_text="luma/ray-2-720p skipped: locked")).to_be_visible()
    expect(row(page, "google/veo-3")).to_contain_text("Inactive")
    expect(row(page, "luma/ray-flash-2-540p")).to_contain_text("Inactive")
    expect(row(page, "luma/ray-2-720p").locator(".status-active")).to_be_visible()

    # sign out
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    page.goto(f"{base}/admin/models/")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))


def test_form_shows_field_errors_and_saves_nothing(console, page, seeded):
    sign_in(page, console.url)
    page.goto(f"{console.url}/admin/models/new/")
    fill_new_model(page, modelId="acme/bad", qualityMultipliers="{not json")
    page.click("input[type=submit][value=Save]")
    expect(page.locator("text=Not valid JSON")).to_be_visible()
    page.fill("#qualityMultipliers", '{"4k": 2}')
    page.click("input[type=submit][value=Save]")
    expect(page.locator(".alert", has_text="not a supported quality").first).to_be_visible()
    assert run_as_system(seeded, "models:getModelById", {"modelId": "acme/bad"}) is None


def test_a_save_over_another_change_takes_it_in_and_saves_on_the_next(console, page, seeded):
    """A form opened before someone else's change is refused, not saved over it. It comes
    back with what was typed, their change in the fields it left alone and a mark on the
    fields both changed; the next Save applies that (it was refused for ever: the form kept
    the old revision)."""
    sign_in(page, console.url)
    page.goto(f"{console.url}/admin/models/?search=luma/ray-2-720p")
    row(page, "luma/ray-2-720p").locator("a[data-action=edit]").click()
    run_as_system(seeded, "models:updateModel", {"modelId": "luma/ray-2-720p", "patch": {
        "name": "Changed elsewhere", "description": "Theirs"}})
    page.fill("#name", "Mine")
    page.click("input[type=submit][value=Save]")
    alert = page.locator(".alert", has_text="changed luma/ray-2-720p since you opened it").first
    expect(alert).to_contain_text("Their Description is now in the form.")
    expect(alert).to_contain_text("You both changed Name (marked below: yours is kept).")
    expect(page.locator("#name")).to_have_value("Mine")
    expect(page.locator("#description")).to_have_value("Theirs")
    expect(page.get_by_text('also changed meanwhile, to "Changed elsewhere"')).to_be_visible()
    model = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert (model["name"], model["description"]) == ("Changed elsewhere", "Theirs")
    page.click("input[type=submit][value=Save]")
    expect(page.locator(".alert-success").first).to_be_visible()
    model = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert (model["name"], model["description"]) == ("Mine", "Theirs")


def test_viewer_sees_no_edit_controls(console, page):
    sign_in(page, console.url, "viewer")
    expect(page.locator("text=Create")).to_have_count(0)
    expect(page.locator("a[data-action=edit]")).to_have_count(0)
    expect(page.locator(".row-actions a")).to_have_count(0)
    page.goto(f"{console.url}/admin/stats/")
    expect(page.locator("#usage-chart")).to_be_visible()
    expect(page.locator("#usage-table tbody tr")).to_have_count(3)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sso_sign_in(seeded, gunicorn, page):
    from oidc_provider_mock import User, run_server_in_thread

    create_accounts(seeded)
    verified = [User(sub=email, claims={"email": email, "email_verified": True})
                for email in ("editor@example.com", "stranger@elsewhere.example")]
    with run_server_in_thread(user_claims=verified) as provider:
        issuer = f"http://localhost:{provider.server_port}"
        assert requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).ok
        server = gunicorn(seeded.config["DATABASE_URL"], OIDC_ISSUER=issuer,
                          OIDC_CLIENT_ID="catalog", OIDC_CLIENT_SECRET="secret")
        page.goto(f"{server.url}/auth/sign-in")
        page.click("#sso")
        page.fill("input[name=sub]", "editor@example.com")
        page.click("button:has-text('Authorize')")
        expect(page.locator("#signed-in-as")).to_contain_text("editor@example.com · editor")

        page.click("#sign-out")
        page.click("#sso")
        page.fill("input[name=sub]", "stranger@elsewhere.example")
        page.click("button:has-text('Authorize')")
        expect(page.locator(".alert")).to_contain_text("has no active account here")


def test_export_upload_plan_and_apply(console, page, seeded, tmp_path):
    sign_in(page, console.url, "editor")
    page.goto(f"{console.url}/admin/catalog_file/")
    with page.expect_download() as download:
        page.click("#download")
    catalog = json.loads(open(download.value.path()).read())
    catalog["models"][1]["costPerSecond"] = 0.2
    edited = tmp_path / "catalog.json"
    edited.write_text(json.dumps(catalog))
    page.set_input_files("#upload-form input[type=file]", str(edited))
    page.click("#upload-form button")
    expect(page.locator("#plan")).to_contain_text("0 to create, 1 to change")
    expect(page.locator("#plan")).to_contain_text("costPerSecond")
    unchanged = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert unchanged["costPerSecond"] == 0.18
    page.fill("#apply-form input[name=reason]", "quarterly prices")
    page.click("#apply-form button")
    expect(page.locator(".alert-success")).to_contain_text("1 changed")
    changed = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert changed["costPerSecond"] == 0.2

    catalog["models"][0]["supportedDurations"] = []
    edited.write_text(json.dumps(catalog))
    page.set_input_files("#upload-form input[type=file]", str(edited))
    page.click("#upload-form button")
    expect(page.locator("#file-errors")).to_contain_text("models[0].supportedDurations")


def test_inline_edit_of_a_category(console, page, seeded):
    sign_in(page, console.url, "editor")
    cell = row(page, "luma/ray-2-720p").locator("details.inline-edit[data-column=category]")
    cell.locator("summary").click()
    cell.locator("input[name=value]").fill("Cheap")
    cell.locator("input[name=reason]").fill("it is the cheapest")
    cell.locator("button").click()
    expect(row(page, "luma/ray-2-720p").locator("details.inline-edit summary")).to_contain_text(
        "Cheap")
    model = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert model["category"] == "Cheap"


def test_sign_out_everywhere_and_a_new_password(console, page, browser):
    """An admin signs the editor out of another browser; the editor changes their password."""
    other = browser.new_context()
    editor = other.new_page()
    try:
        sign_in(editor, console.url, "editor")
        sign_in(page, console.url, "admin")
        page.goto(f"{console.url}/admin/users/")
        page.locator("tr[data-email='editor@example.com'] .sign-out-user button").click()
        expect(page.locator(".alert-success")).to_contain_text(
            "Signed editor@example.com out everywhere")
        editor.goto(f"{console.url}/admin/models/")
        expect(editor).to_have_url(re.compile(r"/auth/sign-in"))

        sign_in(editor, console.url, "editor")
        editor.goto(f"{console.url}/admin/account/")
        editor.fill("#currentPassword", PASSWORD)
        editor.fill("#newPassword", "another long passphrase")
        editor.fill("#confirmPassword", "another long passphrase")
        editor.click("#change-password button")
        expect(editor).to_have_url(re.compile(r"/auth/sign-in"))
        expect(editor.locator(".alert")).to_contain_text("Password changed")
        editor.fill("#email", ACCOUNTS["editor"])
        editor.fill("#password", "another long passphrase")
        editor.click("#sign-in-form button[type=submit]")
        expect(editor.locator("#signed-in-as")).to_contain_text("editor@example.com")
    finally:
        other.close()


def test_a_chat_model_is_made_priced_and_quoted_from_the_browser(console, page, seeded):
    """The form shows what fits a chat model; prices read as money with their units; a
    scheduled price shows beside the current one; the calculator takes tokens."""
    import time

    later = int(time.time() * 1000) + 30 * 86_400_000
    base = console.url
    sign_in(page, base)
    page.goto(f"{base}/admin/models/new/")
    page.select_option("#contentType", "chat")
    expect(page.locator("#supportedDurations")).to_be_hidden()
    expect(page.locator("#contextWindow")).to_be_visible()
    page.fill("#modelId", "openai/gpt-4o")
    page.fill("#name", "GPT-4o")
    page.fill("#provider", "OpenAI")
    page.fill("#contextWindow", "128000")
    page.select_option("#capabilities", ["vision", "tools"])
    page.fill("#prices", json.dumps([
        {"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "2.5"},
            {"unit": "cache_read_tokens", "price": "1.25"},
            {"unit": "output_tokens", "price": "10"}]},
        {"effectiveFrom": later, "components": [
            {"unit": "input_tokens", "price": "2"}, {"unit": "output_tokens", "price": "8"}]}]))
    page.click("input[type=submit][value=Save]")
    expect(row(page, "openai/gpt-4o")).to_contain_text("$2.50 / 1M input tokens")
    open_details(page, base, "openai/gpt-4o")
    table = page.locator("#price-table")
    expect(table).to_contain_text("$1.25 / 1M cached input tokens")
    expect(table.locator(".scheduled-price").first).to_contain_text("from ")
    expect(table.locator(".scheduled-price").first).to_contain_text("$2.00 / 1M input tokens")
    page.fill("#usage-inputTokens", "1000000")
    page.fill("#usage-outputTokens", "1000000")
    page.click("#price-calculator button")
    expect(page.locator("#quote-usd")).to_have_text("$12.50")
    expect(page.locator("#quote")).to_contain_text("1,000,000 × $10.00 / 1M output tokens")


def test_a_long_name_or_id_wraps_instead_of_widening_the_page(console, page, seeded):
    """A 200-character name and id, without a space (the longest the spec takes): the list,
    Home and the model's page stay as wide as the window."""
    long_id = "acme/" + "x" * 195
    run_as_system(seeded, "models:createModel", {
        "modelId": long_id, "name": "N" * 200, "provider": "Acme", "contentType": "video",
        "costPerSecond": 0.1, "supportedDurations": [5], "supportedQualities": ["standard"]})
    run_as_system(seeded, "models:setModelsActive", {"modelIds": [long_id], "isActive": True})
    sign_in(page, console.url)
    for path in ("/admin/models/", "/admin/"):
        page.goto(f"{console.url}{path}")
        expect(page.locator("body")).to_contain_text("N" * 50)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400, path
    open_details(page, console.url, long_id)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400


def test_pasted_text_cut_at_a_fields_length_says_so(console, browser):
    """The browser cuts text pasted past a field's `maxlength` without a word: the console
    says it beside the field, and the next keystroke takes the note away."""
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        sign_in(page, console.url)
        page.goto(f"{console.url}/admin/models/new/")
        name = page.locator("#name")
        most = int(name.get_attribute("maxlength"))
        page.evaluate("text => navigator.clipboard.writeText(text)", "n" * (most + 50))
        name.click()
        page.keyboard.press("Control+V")
        assert len(name.input_value()) == most
        note = page.locator(".cut-note")
        expect(note).to_have_text(f"The pasted text was cut to fit: this field holds at most "
                                  f"{most} characters ({most + 50} pasted in all).")
        page.keyboard.press("Backspace")
        expect(note).to_have_count(0)
        page.keyboard.press("Control+V")  # cut again, then a paste that fits takes the note
        expect(note).to_have_count(1)
        page.evaluate("text => navigator.clipboard.writeText(text)", "short\n")
        page.keyboard.press("Control+A")  # over the whole text (an input drops the break)
        page.keyboard.press("Control+V")
        assert name.input_value() == "short"
        expect(note).to_have_count(0)
    finally:
        context.close()
