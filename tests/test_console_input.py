"""What a person types into the console: numbers are ASCII digits only, and JSON (a form's
field, an imported file) is bounded in depth. Clear messages, never a 500, nothing changes."""

from __future__ import annotations

import html
import io
import itertools
import json
import re

import pytest

from admin.console_json import MAX_DEPTH
from engine.errors import FunctionError
from tests.conftest import catalog_fingerprint, run_as_system
from tests.console import create_accounts, sign_in
from tests.test_history import saved_under_older_rules

# Unicode digits: '²' passes str.isdigit() but not int(); '٣' (Arabic-Indic three) passes
# both int() and Decimal(); '１' is a full-width one.
ODD_DIGITS = ["²", "٣", "１", "߂"]


@pytest.fixture
def console(seeded):
    create_accounts(seeded)
    return seeded


@pytest.fixture
def admin(console, client):
    client.token = sign_in(client, "admin")
    return client


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def new_model(**fields: str) -> dict:
    return {"modelId": "acme/clip-1", "name": "Acme Clip", "provider": "Acme",
            "costPerSecond": "0.10", "supportedDurations": "5, 10",
            "supportedQualities": "standard, high", **fields}


def page_text(response) -> str:
    assert response.status_code < 500, response.status_code
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "Internal error" not in body
    return body


def test_odd_digits_in_ids_and_revisions_find_nothing(console, admin):
    before = catalog_fingerprint(console)
    token = admin.token
    for digit in ODD_DIGITS:
        for url in (f"/admin/models/details/?id={digit}", f"/admin/models/edit/?id={digit}"):
            assert admin.get(url).status_code in (302, 404), url
        body = page_text(admin.post("/admin/models/row-action/lock/", follow_redirects=True,
                                    data={"csrf_token": token, "id": digit}))
        assert "No such model." in body, digit
        body = page_text(admin.post("/admin/models/revert/", follow_redirects=True, data={
            "csrf_token": token, "id": "1", "revision": digit}))
        assert "Pick a model and a revision." in body, digit
        assert admin.post("/admin/models/ajax/update/", data={
            "csrf_token": token, "list_form_pk": digit, "name": "X"}).status_code == 400
        page_text(admin.post("/admin/models/action/", follow_redirects=True, data={
            "csrf_token": token, "action": "delete", "rowid": [digit, f"1{digit}"]}))
        page_text(admin.get(f"/admin/models/?page={digit}&page_size={digit}&sort={digit}"
                            f"&desc={digit}"))
    assert catalog_fingerprint(console) == before


ODD_NUMBERS = [
    ("costPerSecond", "٠.١٠", "is not an amount in USD"),
    ("costPerSecond", "sNaN", "is not an amount in USD"),
    ("costPerSecond", "1e3", "is not an amount in USD"),
    ("costPerSecond", "-0.5", "is negative: an amount in USD is 0 or more"),
    ("costPerSecond", "0.30000000000000004", "at most 6 decimal places"),  # as 0.1234567 is
    ("costPerSecond", "0.1234567", "at most 6 decimal places"),
    ("supportedDurations", "5, ٩", "is not a whole number"),
    ("supportedDurations", "²", "is not a whole number"),
    ("fixedDuration", "²", "is not a whole number"),
    ("maxDuration", "１０", "is not a whole number"),
]


def test_odd_numbers_in_the_model_form_are_refused(console, admin):
    before = catalog_fingerprint(console)
    for field, value, message in ODD_NUMBERS:
        body = page_text(admin.post("/admin/models/new/", data={
            "csrf_token": admin.token, **new_model(**{field: value})}))
        assert message in body, (field, value)
    assert catalog_fingerprint(console) == before


def test_ascii_numbers_still_make_a_model(console, admin):
    admin.post("/admin/models/new/", data={"csrf_token": admin.token, **new_model(
        costPerSecond="$0.125", supportedDurations=" 5,10 ", maxDuration="10")})
    model = run_as_system(console, "models:getModelById", {"modelId": "acme/clip-1"})
    assert model["costPerSecond"] == 0.125 and model["supportedDurations"] == [5, 10]
    assert model["maxDuration"] == 10


def test_odd_digits_in_the_calculator_and_edit_form_get_messages(console, admin):
    before = catalog_fingerprint(console)
    body = page_text(admin.get("/admin/models/details/?id=2&duration=٥&quality=high"))
    assert "duration" in body and "must be" in body
    body = page_text(admin.post("/admin/models/edit/?id=2", data={
        "csrf_token": admin.token, "modelId": "luma/ray-2-720p", "name": "X",
        "provider": "Luma", "costPerSecond": "0.18", "supportedDurations": "5, 9",
        "qualityMultipliers": json.dumps(run_as_system(console, "models:getModelById", {
            "modelId": "luma/ray-2-720p"})["qualityMultipliers"]),  # the price unchanged
        "supportedQualities": "standard", "expectedRevision": "²"}))
    assert "Revision must be a number" in body  # by its label
    assert catalog_fingerprint(console) == before


def test_odd_digits_in_a_tokens_lifetime_get_a_message(console, admin):
    body = page_text(admin.post("/admin/tokens/create", follow_redirects=True, data={
        "csrf_token": admin.token, "name": "odd", "scopes": "stats:write",
        "expiresInDays": "٣"}))
    assert "Expires in (days): a whole number of days" in body
    body = page_text(admin.post("/admin/tokens/create", follow_redirects=True, data={
        "csrf_token": admin.token, "name": "none", "expiresInDays": "0"}))
    assert "Scopes must have at least 1 item" in body  # by their labels, one at a time
    body = page_text(admin.post("/admin/tokens/create", follow_redirects=True, data={
        "csrf_token": admin.token, "name": "none", "scopes": "stats:write",
        "expiresInDays": "0"}))
    assert "Expires in (days) must be at least 1" in body
    # what was typed comes back with the refusal, to be corrected, not typed again
    assert 'id="token-name" name="name" autocomplete="off" required value="none"' in body
    assert re.search(r'value="stats:write" id="scope-\d+" checked', body)
    assert re.search(r'id="token-days"[^>]*value="0"', body)
    assert run_as_system(console, "access:listTokens") == []
    for days, said in (("99999999999", "Expires in (days) must be at most 3650"),
                       ("9" * 30, "Expires in (days): more days than a token can last.")):
        body = page_text(admin.post("/admin/tokens/create", follow_redirects=True, data={
            "csrf_token": admin.token, "name": "long", "scopes": "stats:write",
            "expiresInDays": days}))
        assert said in body, days
    assert run_as_system(console, "access:listTokens") == []


def test_a_number_too_large_is_said_to_be_too_large(console, admin):
    """Digits refused for their size say so (they were "not an amount in USD (e.g. 0.10)",
    "not a whole number of seconds")."""
    before = catalog_fingerprint(console)
    body = html.unescape(page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
        console, admin, costPerSecond="99999999999999999999999",
        supportedDurations="5, 99999999999999999999", maxDuration="9" * 40))))
    assert "'99999999999999999999999' is too large: at most 15 digits before the point" in body
    assert "'99999999999999999999' is too large: at most 2,147,483,647" in body
    assert f"'{'9' * 20}…' is too large: at most 2,147,483,647" in body  # shown short
    assert catalog_fingerprint(console) == before


def test_deeply_nested_json_fields_are_refused(console, admin):
    before = catalog_fingerprint(console)
    for field in ("inputSchema", "modelParameters", "requirements", "qualityMultipliers"):
        for depth in (MAX_DEPTH + 1, 5000):
            body = page_text(admin.post("/admin/models/new/", data={
                "csrf_token": admin.token, **new_model(**{field: deep_object(depth)})}))
            assert f"Nested more than {MAX_DEPTH} levels deep" in body, (field, depth)
    assert catalog_fingerprint(console) == before


def test_json_fields_the_functions_refuse_get_their_messages(console, admin):
    before = catalog_fingerprint(console)
    body = page_text(admin.post("/admin/models/new/", data={
        "csrf_token": admin.token, **new_model(inputSchema=deep_object(20))}))
    assert "nests deeper than 16 levels" in body
    for value, message in [('{"a": NaN}', "NaN is not a number JSON allows"),
                           ('{"a": ' + "1" * 5000 + "}", "a number too long"),
                           ('{"a": 1', "Not valid JSON"),
                           ('{"a": 1, "a": 2}', "twice in one object")]:
        body = page_text(admin.post("/admin/models/new/", data={
            "csrf_token": admin.token, **new_model(modelParameters=value)}))
        assert message in body, message
    assert catalog_fingerprint(console) == before


def test_deeply_nested_import_files_are_refused(console, admin):
    before = catalog_fingerprint(console)
    exported = run_as_system(console, "catalog:exportCatalog")
    files = ["[" * 100_000 + "]" * 100_000, deep_object(3000),
             json.dumps(exported)[:-1] + ', "x": ' + deep_object(MAX_DEPTH) + "}"]
    for step, upload, text in itertools.product(("plan", "apply"), (False, True), files):
        form = {"csrf_token": admin.token, "reason": "deep"}
        if upload:
            form["file"] = (io.BytesIO(text.encode()), "catalog.json")
        else:
            form["content"] = text
        body = page_text(admin.post(f"/admin/catalog_file/{step}", data=form,
                                    follow_redirects=True))
        assert f"Nested more than {MAX_DEPTH} levels deep" in body, (step, upload, text[:20])
    assert catalog_fingerprint(console) == before


def test_an_upload_without_a_file_asks_for_one(console, admin):
    before = catalog_fingerprint(console)
    for step in ("plan", "apply"):
        body = page_text(admin.post(f"/admin/catalog_file/{step}", follow_redirects=True, data={
            "csrf_token": admin.token, "file": (io.BytesIO(b""), ""), "reason": "none"}))
        assert "Choose a catalog file to upload" in body and "not valid JSON" not in body
    assert catalog_fingerprint(console) == before


def test_the_provider_filter_ignores_case_as_the_api_does(console, admin):
    import html
    import re

    for i, provider in enumerate(("OpenAI", "openai")):
        run_as_system(console, "models:createModel", {
            "modelId": f"x/chat-{i}", "name": f"Chat {i}", "provider": provider,
            "contentType": "chat", "prices": [{"effectiveFrom": None, "components": [
                {"unit": "input_tokens", "price": "1"}]}]})
    listing = page_text(admin.get("/admin/models/"))
    found = re.search(r'id="filter-groups-data"[^>]*>(.*?)</', listing, re.S)
    provider = json.loads(html.unescape(found.group(1)))["Provider"][0]
    spellings = [value for value, _ in provider["options"]]
    assert len([v for v in spellings if v.casefold() == "openai"]) == 1  # one, not two
    for spelling in ("openai", "OPENAI"):
        body = page_text(admin.get(f"/admin/models/?flt0_{provider['arg']}={spelling}"))
        assert "x/chat-0" in body and "x/chat-1" in body and "luma/ray-2-720p" not in body
    assert {m["modelId"] for m in run_as_system(console, "models:getModelsByProvider",
                                                {"provider": "OpenAI"})} >= {"x/chat-0",
                                                                               "x/chat-1"}


def test_an_import_file_with_a_field_too_deep_names_it(console, admin):
    exported = run_as_system(console, "catalog:exportCatalog")
    exported["models"][0]["inputSchema"] = json.loads(deep_object(30))
    before = catalog_fingerprint(console)
    body = page_text(admin.post("/admin/catalog_file/apply", follow_redirects=True, data={
        "csrf_token": admin.token, "content": json.dumps(exported), "reason": "deep"}))
    # named by its label (the console never shows `inputSchema`)
    assert "Input schema" in body and "nests deeper than 16 levels" in body
    assert catalog_fingerprint(console) == before


def test_a_plan_reviewed_before_another_edit_is_shown_again_not_applied(console, admin):
    """The plan a person confirms is what is applied: an edit made after the plan was shown
    (another tab, another admin) refuses the apply, and the page shows the plan as it is now,
    with that edit's undo in it."""
    exported = run_as_system(console, "catalog:exportCatalog")
    flash = next(m for m in exported["models"] if m["modelId"] == "luma/ray-flash-2-540p")
    flash["description"] = "reviewed"
    content = json.dumps(exported)
    shown = page_text(admin.post("/admin/catalog_file/plan", data={
        "csrf_token": admin.token, "content": content}))
    version = re.search(r'name="plan_version" value="(\d+)"', shown).group(1)
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                  "patch": {"costPerSecond": 0.3}})
    before = catalog_fingerprint(console)
    body = page_text(admin.post("/admin/catalog_file/apply", follow_redirects=True, data={
        "csrf_token": admin.token, "content": content, "reason": "review",
        "plan_version": version}))
    assert "Not applied: the catalog changed since that plan was made" in body
    assert "change luma/ray-2-720p" in html.unescape(re.sub(r"<[^>]+>", "", body))
    assert catalog_fingerprint(console) == before
    again = re.search(r'name="plan_version" value="(\d+)"', body).group(1)
    assert int(again) == int(version) + 1
    applied = page_text(admin.post("/admin/catalog_file/apply", follow_redirects=True, data={
        "csrf_token": admin.token, "content": content, "reason": "review",
        "plan_version": again}))
    assert "Applied: 0 created, 2 changed" in applied
    for odd in ("²", "٣", "-1", "9" * 30):  # not a version: read as none given, never a 500
        answer = admin.post("/admin/catalog_file/apply", data={
            "csrf_token": admin.token, "content": content, "reason": "odd",
            "plan_version": odd})
        assert answer.status_code == 302, odd


def test_an_upload_over_what_a_request_may_carry_is_said_on_its_page(seeded, admin):
    """A catalog export of a few thousand models is over 1 MiB: the page says so and what to
    do (it was Werkzeug's bare 413 page), and nothing changes."""
    before = catalog_fingerprint(seeded)
    answer = admin.post("/admin/catalog_file/plan", follow_redirects=True, data={
        "csrf_token": admin.token, "content": "x" * (1024 * 1024 + 1)})
    assert answer.status_code == 200
    assert ("The upload is 1.0 MiB, over the 1 MiB a request may carry: plan and apply a "
            "catalog file this large with the CLI (flask --app wsgi catalog plan FILE)"
            ) in page_text(answer)
    assert catalog_fingerprint(seeded) == before


def test_the_cli_refuses_a_deeply_nested_file_cleanly(seeded, runner, tmp_path):
    """The operators' twin of the import page: a message, not a traceback."""
    path = tmp_path / "deep.json"
    path.write_text('{"formatVersion": 1, "models": ' + "[" * 50_000 + "]" * 50_000 + "}")
    before = catalog_fingerprint(seeded)
    for command in (["catalog", "plan", str(path)],
                    ["catalog", "apply", str(path), "--reason", "deep"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 1 and "nested too deeply to read" in result.output
        assert not isinstance(result.exception, RecursionError)
    assert catalog_fingerprint(seeded) == before


def test_a_catalog_file_that_names_a_key_twice_is_refused_everywhere(console, admin, runner,
                                                                   tmp_path):
    """A file reviewed in git must say one thing: a key named twice in one entry (which would
    be read as its last value) is refused by the CLI and the console, and nothing changes."""
    text = json.dumps(run_as_system(console, "catalog:exportCatalog"))
    text = text.replace('"costPerSecond": 0.18', '"costPerSecond": 0.18, "costPerSecond": 0.5', 1)
    path = tmp_path / "twice.json"
    path.write_text(text)
    before = catalog_fingerprint(console)
    result = runner.invoke(args=["catalog", "apply", str(path), "--reason", "twice"])
    assert result.exit_code == 1 and 'names the key "costPerSecond" twice' in result.output
    body = page_text(admin.post("/admin/catalog_file/apply", data={
        "csrf_token": admin.token, "content": text, "reason": "twice"}, follow_redirects=True))
    assert 'names the key "costPerSecond" twice' in html.unescape(body)
    assert catalog_fingerprint(console) == before


def test_a_bulk_outcome_flashes_a_few_messages_and_a_count(app):
    """A 5,000-model selection's skips fit the session cookie: the first few, then a count."""
    from flask import get_flashed_messages

    from admin.model_view import SHOWN, _flash_few

    with app.test_request_context():
        _flash_few([f"m{i} skipped: locked." for i in range(5000)], "warning", "skipped")
        messages = get_flashed_messages()
    assert messages[:2] == ["m0 skipped: locked.", "m1 skipped: locked."]
    assert len(messages) == SHOWN + 1 and messages[-1] == f"…and {5000 - SHOWN:,} more skipped."


def test_a_filtered_selection_that_changed_after_its_confirmation_is_refused(seeded, admin):
    """"Disable every model that matches" acts only on the models its confirmation named: a
    model that came to match meanwhile was never shown, so nothing is done."""
    import re

    page = admin.get("/admin/models/confirm/disable/?matching=1&search=ray").get_data(True)
    selection = re.search(r'name="selection" value="([0-9a-f]+)"', page).group(1)
    assert "luma/ray-2-720p" in page and "luma/ray-flash-2-540p" in page
    run_as_system(seeded, "models:createModel", {
        "modelId": "acme/ray-clone", "name": "Ray clone", "provider": "Acme",
        "contentType": "video", "costPerSecond": 0.1, "supportedDurations": [5],
        "supportedQualities": ["standard"], "isActive": True})
    before = catalog_fingerprint(seeded)
    refused = admin.post("/admin/models/bulk/disable/?search=ray", follow_redirects=True, data={
        "csrf_token": admin.token, "matching": "1", "selection": selection, "reason": "r"})
    assert "nothing was done" in refused.get_data(True)
    assert catalog_fingerprint(seeded) == before
    page = admin.get("/admin/models/confirm/disable/?matching=1&search=ray").get_data(True)
    fresh = re.search(r'name="selection" value="([0-9a-f]+)"', page).group(1)
    assert fresh != selection and "acme/ray-clone" in page


@pytest.mark.parametrize("url", ["/admin/models/new/", "/admin/models/edit/?id=2"])
def test_the_model_forms_hidden_fields_have_no_labels(console, admin, url):
    """The revision, the previewed price and the CSRF token are carried, never shown."""
    html = admin.get(url).get_data(as_text=True)
    for name in ("expectedRevision", "pricePreviewed", "csrf_token"):
        assert re.search(rf'<input[^>]*id="{name}"[^>]*type="hidden"', html), name
        assert f'<label for="{name}"' not in html, name


def test_disabling_in_batches_acts_as_one_call(seeded, admin, monkeypatch):
    """The console sends setModelsActive a batch at a time: the default goes in the last one,
    so disabling every model turns the default off too, as one call would, and not only when
    it happens to come last."""
    monkeypatch.setattr("admin.model_view.BATCH", 1)
    run_as_system(seeded, "models:setDefaultModel", {"modelId": "google/veo-3"})  # the first
    done = admin.post("/admin/models/bulk/disable/", follow_redirects=True, data={
        "csrf_token": admin.token, "rowid": ["1", "2", "3"], "reason": "r"}).get_data(True)
    assert "skipped" not in done, done
    active = run_as_system(seeded, "models:getActiveModels")
    assert active == []


def test_a_chat_models_details_show_its_fields_and_each_price_that_changed(seeded, admin):
    """The history names the price that changed, old and new, not "2 entries → 2 entries";
    the details list only the fields of its kind (no durations for chat)."""
    entry = {"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "2.5"}, {"unit": "output_tokens", "price": "10"}]}
    chat = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/chat-1", "name": "Acme Chat", "provider": "Acme",
        "contentType": "chat", "prices": [entry]})
    raised = {**entry, "components": [entry["components"][0],
                                      {"unit": "output_tokens", "price": "12"}]}
    run_as_system(seeded, "models:updateModel", {"modelId": "acme/chat-1", "patch": {"prices": [
        raised, {"effectiveFrom": "2027-01-15T00:00:00Z",
                 "components": [{"unit": "input_tokens", "price": "2"}]}]}})
    page = page_text(admin.get(f"/admin/models/details/?id={chat['_id']}"))
    history = page[page.index('id="history-table"'):]
    changes = [re.sub(r"<[^>]+>", "", line).strip() for line in re.findall(
        r"<div>(Prices.*?)</div>", history, re.S)]
    assert changes == [
        "Prices, output tokens, since always: $10.00 / 1M output tokens → "
        "$12.00 / 1M output tokens",
        "Prices, input tokens, from 2027-01-15 00:00 UTC: none → $2.00 / 1M input tokens"]
    details = page[page.index('id="details-table"'):page.index('id="prices"')]
    assert "Context window" in details and "Supported durations" not in details


def test_the_history_shows_switches_and_nothing_in_words(seeded, admin):
    """'Pause when failing: none → yes', not 'null → true'; text in its own script."""
    from admin.money import changes_shown

    assert changes_shown([{"field": "pauseWhenFailing", "old": None, "new": True},
                          {"field": "isPremium", "old": True, "new": False},
                          {"field": "name", "old": "Ray", "new": "Модель"}]) == [
        ("Pause when failing", "none", "yes"), ("Premium", "yes", "no"),
        ("Name", '"Ray"', '"Модель"')]


def test_a_revert_that_would_change_nothing_says_so(seeded, admin):
    """A model already back at a revision's values (a rename undone by hand, the default moved
    meanwhile): the confirmation says there is nothing to revert, and nothing is written."""
    ray = "luma/ray-2-720p"
    run_as_system(seeded, "models:updateModel", {"modelId": ray, "patch": {"name": "Renamed"}})
    run_as_system(seeded, "models:updateModel", {"modelId": ray,
                                                 "patch": {"name": "Luma Ray-2-720p"}})
    run_as_system(seeded, "models:setDefaultModel", {"modelId": ray})
    before = catalog_fingerprint(seeded)
    asked = page_text(admin.get("/admin/models/revert/?id=2&revision=1", follow_redirects=True))
    assert "luma/ray-2-720p already matches revision 1: there is nothing to revert." in asked
    posted = page_text(admin.post("/admin/models/revert/", follow_redirects=True, data={
        "csrf_token": admin.token, "id": "2", "revision": "1"}))
    assert "already matches revision 1: nothing was changed." in posted
    assert "reverted to revision 1" not in posted
    assert catalog_fingerprint(seeded) == before
    missing = page_text(admin.get("/admin/models/revert/?id=2&revision=99",
                                  follow_redirects=True))
    assert "luma/ray-2-720p has no revision 99." in missing


def test_a_revert_to_values_the_rules_now_refuse_says_why_before_it_is_asked(seeded, admin):
    """The confirmation applies the revert's checks: a revision saved under older rules is
    refused with the rule it breaks, and no button is offered."""
    saved_under_older_rules(seeded, "luma/ray-2-720p", 1, name="n" * 300)
    run_as_system(seeded, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                 "patch": {"name": "Ray"}})
    before = catalog_fingerprint(seeded)
    asked = page_text(admin.get("/admin/models/revert/?id=2&revision=1", follow_redirects=True))
    assert ("luma/ray-2-720p cannot go back to revision 1: Name must be at most 200 "
            "characters, got 300: the revision holds a value the rules no longer allow") in asked
    assert 'id="confirm-form"' not in asked
    posted = page_text(admin.post("/admin/models/revert/", follow_redirects=True, data={
        "csrf_token": admin.token, "id": "2", "revision": "1"}))
    assert "must be at most 200 characters, got 300" in posted
    assert catalog_fingerprint(seeded) == before


def test_a_revert_the_whole_change_refuses_says_why_before_it_is_asked(seeded, admin):
    """The confirmation runs the revert dry: one the catalog's state refuses (a deleted model
    back to an active revision; the default back to an inactive one while others are on) is
    refused on asking, with the function's reason, and nothing is written."""
    ray, flash = "luma/ray-2-720p", "luma/ray-flash-2-540p"
    run_as_system(seeded, "models:deleteModel", {"modelId": ray})
    run_as_system(seeded, "models:setDefaultModel", {"modelId": "google/veo-3"})
    off = run_as_system(seeded, "models:updateModel",
                        {"modelId": flash, "patch": {"isActive": False}})["revision"]
    run_as_system(seeded, "models:updateModel", {"modelId": flash, "patch": {"isActive": True}})
    run_as_system(seeded, "models:setDefaultModel", {"modelId": flash})
    before = catalog_fingerprint(seeded)
    deleted = page_text(admin.get("/admin/models/revert/?id=2&revision=1",
                                  follow_redirects=True))
    assert f"{ray} cannot go back to revision 1: {ray} is deleted" in deleted
    assert "restore it first" in deleted and 'id="confirm-form"' not in deleted
    default = page_text(admin.get(f"/admin/models/revert/?id=3&revision={off}",
                                  follow_redirects=True))
    assert (f"{flash} cannot go back to revision {off}: {flash} is the default model and "
            "cannot be deactivated while other models are active") in default
    assert 'id="confirm-form"' not in default
    assert catalog_fingerprint(seeded) == before


def test_deleting_the_default_is_not_offered(seeded, admin):
    """Its confirmation would offer a button that can only fail: it says why instead."""
    default = run_as_system(seeded, "models:getDefaultModel")
    page = page_text(admin.get(f"/admin/models/confirm/delete/?rowid={default['_id']}",
                               follow_redirects=True))
    assert f"{default['modelId']} is the default: it cannot be deleted" in page
    assert 'id="confirm-form"' not in page


def test_the_calculator_offers_every_quality_a_model_lists(seeded, admin):
    """An image model priced per image, hd dearer: standard is priced by the component without
    a condition, and is offered (and quoted) by name too."""
    image = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/image-1", "name": "Acme Image", "provider": "Acme",
        "contentType": "image", "supportedQualities": ["standard", "hd"], "prices": [{
            "effectiveFrom": None, "components": [
                {"unit": "image", "price": "0.04"},
                {"unit": "image", "price": "0.08", "when": {"quality": "hd"}}]}]})
    url = f"/admin/models/details/?id={image['_id']}"
    page = page_text(admin.get(url))
    select = page[page.index('id="option-quality"'):].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "standard", "hd"]
    quoted = page_text(admin.get(f"{url}&calculate=1&images=2&quality=standard"))
    assert "$0.080" in quoted[quoted.index('id="quote"'):][:600]


def test_a_cached_quote_says_which_input_is_not_cached(seeded, admin):
    chat = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/chat-2", "name": "Acme Chat", "provider": "Acme", "contentType": "chat",
        "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "5"}, {"unit": "cache_read_tokens", "price": "0.5"},
            {"unit": "output_tokens", "price": "15"}]}]})
    url = f"/admin/models/details/?id={chat['_id']}&calculate=1"
    quoted = page_text(admin.get(f"{url}&inputTokens=300000&cacheReadTokens=100000"))
    assert "200,000 × $5.00 / 1M input tokens (not cached) = $1.00" in quoted
    refused = page_text(admin.get(f"{url}&inputTokens=10&cacheReadTokens=100"))
    assert "Cache read tokens (100) cannot exceed Input tokens (10)" in refused
    # a month's tokens: past an INTEGER column's 2,147,483,647, as the engine takes them
    month = page_text(admin.get(f"{url}&inputTokens=9999999999"))
    assert "9,999,999,999 × $5.00 / 1M input tokens = $49,999.999995" in month
    too_many = page_text(admin.get(f"{url}&inputTokens=10000000000000000"))
    assert "Input tokens: a whole number (digits 0-9) up to 1,000,000,000,000,000" in too_many


def test_the_calculator_prices_a_model_that_is_not_offered(seeded, admin):
    """An import's models start inactive, and the monitor may pause one: the calculator
    prices them as they would be priced now, where the API answers INACTIVE."""
    chat = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/chat-3", "name": "Acme Chat", "provider": "Acme", "contentType": "chat",
        "isActive": False, "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "5"}]}]})
    url = f"/admin/models/details/?id={chat['_id']}&calculate=1&inputTokens=300000"
    assert "300,000 × $5.00 / 1M input tokens = $1.50" in page_text(admin.get(url))
    ray = run_as_system(seeded, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                       "patch": {"isActive": False}})
    video = page_text(admin.get(f"/admin/models/details/?id={ray['_id']}&calculate=1"
                                "&duration=9&quality=high"))  # priced by costPerSecond
    assert "9 s × $0.18 / s × 1.0 = $1.62" in video


def test_the_calculator_of_a_price_that_starts_later_asks_for_its_usage(seeded, admin):
    """Before the first price starts, the calculator asks for what that price takes, says
    when it starts in a date, and prices it at a moment from then (it offered only "At")."""
    model = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/embed-1", "name": "Acme Embed", "provider": "Acme",
        "contentType": "embedding", "prices": [{"effectiveFrom": "2099-06-01T00:00:00Z",
                                                "components": [
            {"unit": "input_tokens", "price": "0.03"}]}]})
    url = f"/admin/models/details/?id={model['_id']}"
    assert 'id="usage-inputTokens"' in page_text(admin.get(url))
    now = page_text(admin.get(f"{url}&calculate=1&inputTokens=1000"))
    assert "no price is in force at" in now and "the first starts at 2099-06-01T00:00:00Z" in now
    later = page_text(admin.get(f"{url}&calculate=1&inputTokens=1000&at=2099-06-01T00:00"))
    assert "1,000 × $0.030 / 1M input tokens = $0.000030" in later


def test_the_calculator_prices_a_scheduled_change_at_its_moment(seeded, admin):
    """`At (UTC)`: a later moment prices the entry in force then, and its usage counts are
    the ones that entry takes; what is not a date and time is refused, saying how to write one."""
    chat = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/chat-4", "name": "Acme Chat", "provider": "Acme", "contentType": "chat",
        "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "5"}]},
                   {"effectiveFrom": "2099-01-01T00:00:00Z", "components": [
            {"unit": "input_tokens", "price": "4"}, {"unit": "output_tokens", "price": "8"}]}]})
    url = f"/admin/models/details/?id={chat['_id']}&calculate=1&inputTokens=300000"
    now = page_text(admin.get(url))
    assert "300,000 × $5.00 / 1M input tokens = $1.50" in now and "Priced at" not in now
    assert 'id="usage-outputTokens"' not in now
    later = page_text(admin.get(f"{url}&outputTokens=1000&at=2099-01-01T00:00"))
    assert "Priced at 2099-01-01 00:00:00 UTC" in later
    assert "300,000 × $4.00 / 1M input tokens = $1.20" in later
    assert "1,000 × $8.00 / 1M output tokens = $0.008" in later
    assert 'id="usage-outputTokens"' in later  # what the entry in force then takes
    epoch = page_text(admin.get(f"{url}&at=1970-01-01T00:00"))
    assert "Priced at 1970-01-01 00:00:00 UTC" in epoch and "$1.50" in epoch
    for typed in ("tomorrow", "2099-02-30T00:00", "٢٠٩٩-01-01T00:00", "1969-12-31T23:59",
                  "0001-01-01T00:00"):
        refused = page_text(admin.get(f"{url}&at={typed}"))
        assert "At (UTC): a date and time such as 2027-01-15T00:00, please." in refused, typed


def test_the_model_list_says_which_size_each_price_is_for(seeded, admin):
    """A model priced only by condition (an image model per size) lists each price with it."""
    run_as_system(seeded, "models:createModel", {
        "modelId": "acme/sized", "name": "Acme Sized", "provider": "Acme", "contentType": "image",
        "prices": [{"effectiveFrom": None, "components": [
            {"unit": "image", "price": "0.016", "when": {"size": "256x256"}},
            {"unit": "image", "price": "0.018", "when": {"size": "512x512"}},
            {"unit": "image", "price": "0.02", "when": {"size": "1024x1024"}}]}]})
    listed = page_text(admin.get("/admin/models/?search=sized"))
    assert "$0.016 / image (size 256x256) · $0.018 / image (size 512x512) …" in listed


def test_the_price_preview_shows_each_scheduled_change(app):
    """A future entry replaces the whole component list: the preview quotes the request at
    that moment too, so an hd price that the entry leaves out shows as the price it falls to."""
    from admin.price_preview import preview

    now = 1_790_000_000_000
    entry = {"effectiveFrom": None, "components": [
        {"unit": "image", "price": "0.04"},
        {"unit": "image", "price": "0.08", "when": {"quality": "hd"}}]}
    old = {"contentType": "image", "prices": [entry]}
    new = {"contentType": "image", "prices": [entry, {
        "effectiveFrom": "2027-01-15T00:00:00Z", "components": [
            {"unit": "image", "price": "0.05"}]}]}
    with app.app_context():
        rows = preview(old, new, now)
    assert [(r["request"], r["old"], r["new"]) for r in rows] == [
        ("1 image(s)", "$0.040", "$0.040"),
        ("1 image(s), quality hd", "$0.080", "$0.080"),
        ("From 2027-01-15 00:00 UTC: 1 image(s)", "$0.040", "$0.050"),
        ("From 2027-01-15 00:00 UTC: 1 image(s), quality hd", "$0.080", "$0.050")]


def test_the_price_preview_shows_a_scheduled_change_the_edit_drops(app):
    """Saving a price without its scheduled cut cancels the cut: the preview says what the
    request would have cost then and what it will cost instead (it showed only today's)."""
    from admin.price_preview import preview

    now = 1_790_000_000_000
    today = {"effectiveFrom": None, "components": [{"unit": "image", "price": "0.04"}]}
    old = {"contentType": "image", "prices": [today, {
        "effectiveFrom": "2027-01-15T00:00:00Z", "components": [
            {"unit": "image", "price": "0.03"},
            {"unit": "image", "price": "0.06", "when": {"quality": "hd"}}]}]}
    new = {"contentType": "image", "prices": [
        {**today, "components": [{"unit": "image", "price": "0.045"}]}]}
    with app.app_context():
        rows = preview(old, new, now)
    assert [(r["request"], r["old"], r["new"]) for r in rows] == [  # the hd price dropped too
        ("1 image(s)", "$0.040", "$0.045"),
        ("1 image(s), quality hd", "$0.040", "$0.045"),
        ("From 2027-01-15 00:00 UTC: 1 image(s)", "$0.030", "$0.045"),
        ("From 2027-01-15 00:00 UTC: 1 image(s), quality hd", "$0.060", "$0.045")]


def _preview(app, old_prices: list, new_prices: list, kind: str = "chat") -> list[tuple]:
    from admin.price_preview import preview

    with app.app_context():
        rows = preview({"contentType": kind, "prices": old_prices},
                       {"contentType": kind, "prices": new_prices}, 1_790_000_000_000)
    return [(r["request"], r["old"], r["new"]) for r in rows]


def test_the_price_preview_prices_audio_by_the_hour(app):
    """A transcription price per audio hour: a minute of audio, before and after (the
    preview showed no request and $0.00)."""
    def per_hour(price):
        return [{"effectiveFrom": None, "components": [{"unit": "audio_hour", "price": price}]}]

    assert _preview(app, per_hour("0.36"), per_hour("3.6"), "transcription") == [
        ("60 s of audio", "$0.0060", "$0.060")]
    # A quotient reads as its first 12 digits (it showed all 28: $0.004166666666666666666666666667)
    assert _preview(app, per_hour("0.36"), per_hour("0.25"), "transcription") == [
        ("60 s of audio", "$0.0060", "$0.00416666666666…")]


def test_the_price_preview_of_an_image_priced_by_size_and_quality_names_both(app):
    """Each request names a value of every option the price needs (it showed only "quality
    must be given"), then changes one at a time."""
    from tests.test_quote import IMAGE

    cheaper = json.loads(json.dumps(IMAGE["prices"]))
    cheaper[0]["components"][0]["price"] = "0.03"
    assert _preview(app, IMAGE["prices"], cheaper, "image") == [
        ("1 image(s), size 1024x1024", "$0.040", "$0.030"),  # each component's conditions
        ("1 image(s), size 1024x1024, quality hd", "$0.080", "$0.080"),
        ("1 image(s), size 1024x1792", "$0.080", "$0.080"),
        ("1 image(s), size 1024x1792, quality hd", "$0.12", "$0.12"),
        ("1 image(s), size 1024x1024, quality standard", "$0.040", "$0.030")]  # in turn


def test_the_price_preview_shows_the_default_and_what_a_unit_dropped_leaves(app):
    """A component without a quality is shown beside the hd one (the base the price needs
    was hd, and hid it); a unit the new price drops leaves the rest priced, and says so (the
    new price showed only a refusal)."""
    def two(hd_price):
        return [{"effectiveFrom": None, "components": [
            {"unit": "image", "price": "0.04", "when": {"size": "1024x1024"}},
            {"unit": "image", "price": hd_price, "when": {"size": "1024x1024",
                                                          "quality": "hd"}}]}]

    rows = _preview(app, two("0.08"), two("0.09"), "image")
    assert ("1 image(s), size 1024x1024", "$0.040", "$0.040") in rows
    assert [r[1:] for r in rows if "quality hd" in r[0]] == [("$0.080", "$0.090")]
    both = [{"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "1"},
                                                   {"unit": "output_tokens", "price": "2"}]}]
    assert _preview(app, both, [{**both[0], "components": both[0]["components"][:1]}]) == [
        ("1,000 input tokens, 500 output tokens", "$0.0020",
         "$0.0010 (output tokens: no price, refused)")]


def test_the_price_preview_shows_cache_and_tier_changes(app):
    """A typical request crosses no tier and reads no cache: a cached request and one past
    the highest tier show those prices' changes (they showed none)."""
    from tests.test_quote import GEMINI

    dearer = json.loads(json.dumps(GEMINI["prices"]))
    dearer[0]["components"][0]["tiers"][0]["price"] = "25"  # input above 200,000 tokens
    dearer[0]["components"][1]["price"] = "0.5"  # cache reads
    assert _preview(app, GEMINI["prices"], dearer) == [
        ("1,000 input tokens, 500 output tokens", "$0.00625", "$0.00625"),
        ("cached: 1,000 input tokens, 500 of them cache reads, 500 output tokens",
         "$0.00578", "$0.005875"),
        ("long: 201,000 input tokens, 500 output tokens", "$0.51", "$5.0325")]


def test_the_price_preview_prices_each_moment_as_a_quote_then_would(app):
    """Each moment is priced as `pricing:quote` would price it then: entries with other
    units, a cache price dropped (cache reads are then input, as the API takes them), and an
    option only the old price needs (its first value, said)."""
    hourly = {"effectiveFrom": None, "components": [{"unit": "audio_hour", "price": "0.576"}]}
    by_second = {"effectiveFrom": "2027-05-01T00:00:00Z", "components": [
        {"unit": "input_audio_second", "price": "0.0001"}]}
    assert _preview(app, [hourly], [hourly, by_second], "transcription") == [
        ("60 s of audio", "$0.0096", "$0.0096"),
        ("From 2027-05-01 00:00 UTC: 60 s of audio, 60 s of input audio",  # the units change:
         "$0.0096 (input audio length seconds: no price, refused)",  # what a client sends
         "$0.0060 (audio seconds: no price, refused)")]  # is refused, said
    cached = [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "1"}, {"unit": "cache_read_tokens", "price": "0.1"},
        {"unit": "output_tokens", "price": "2"}]}]
    plain = [{**cached[0], "components": [cached[0]["components"][0],
                                          cached[0]["components"][2]]}]
    rows = dict((r[0], r[1:]) for r in _preview(app, cached, plain))
    assert rows["cached: 1,000 input tokens, 500 output tokens, 500 of them cache reads"] == (
        "$0.00155", "$0.0020")  # no "refused": the API prices cache reads as input then
    sized = [{"effectiveFrom": None, "components": [
        {"unit": "image", "price": "0.04", "when": {"size": "1024x1024"}},
        {"unit": "image", "price": "0.08", "when": {"size": "1024x1792"}}]}]
    flat = [{"effectiveFrom": None, "components": [{"unit": "image", "price": "0.05"}]}]
    assert _preview(app, sized, flat, "image")[0] == (
        "1 image(s)", "$0.040 (size 1024x1024)", "$0.050")


def test_the_price_preview_shows_the_day_price_beside_an_off_peak_window(app):
    """A change that starts at midnight inside an off-peak window (22:00-06:00): the day's
    price from 06:00 is shown too (only the night price was)."""
    now = [{"effectiveFrom": None, "components": [{"unit": "input_tokens", "price": "1"}]}]
    later = [*now, {"effectiveFrom": "2027-02-01T00:00:00Z", "components": [
        {"unit": "input_tokens", "price": "2"}]},
        {"effectiveFrom": "2027-02-01T00:00:00Z", "utcTime": {"start": "22:00", "end": "06:00"},
         "components": [{"unit": "input_tokens", "price": "0.5"}]}]
    rows = _preview(app, now, later)
    assert ("From 2027-02-01 00:00 UTC: 1,000 input tokens", "$0.0010", "$0.00050") in rows
    assert ("From 2027-02-01 06:00 UTC: 1,000 input tokens", "$0.0010", "$0.0020") in rows


def test_the_price_preview_of_a_price_that_starts_later_says_when(app):
    """No price now: the request is still described, the refusal names the start as a date,
    and the row at the start prices it (it showed a blank request, raw milliseconds, and
    $0.00)."""
    later = [{"effectiveFrom": "2027-06-01T00:00:00Z",
              "components": [{"unit": "input_tokens", "price": "0.03"}]}]
    now_price = [{"effectiveFrom": None,
                  "components": [{"unit": "input_tokens", "price": "0.02"}]}]
    (now_row, start_row) = _preview(app, now_price, later, "embedding")
    assert now_row[:2] == ("1,000 input tokens", "$0.000020")
    assert now_row[2] == ("— (no price is in force at 2026-09-21T14:13:20Z (1790000000000); "
                          "the first starts at 2027-06-01T00:00:00Z (1811808000000))")
    assert start_row == ("From 2027-06-01 00:00 UTC: 1,000 input tokens", "$0.000020",
                         "$0.000030")


@pytest.mark.parametrize("multipliers", ['{"high": "x"}', '{"high": null}', '{"high": true}',
                                         '{"high": [2]}'])
def test_multipliers_that_are_not_numbers_get_the_functions_message(console, admin,
                                                                    multipliers):
    """The price preview runs before the mutation: a multiplier that is not a number is the
    mutation's to refuse, with its message, not a 500 in the preview."""
    before = catalog_fingerprint(console)
    body = page_text(admin.post("/admin/models/edit/?id=2", data={
        "csrf_token": admin.token, "modelId": "luma/ray-2-720p", "name": "Luma Ray-2-720p",
        "provider": "Luma", "costPerSecond": "0.18", "supportedDurations": "5, 9",
        "supportedQualities": "standard, high, ultra", "qualityMultipliers": multipliers,
        "expectedRevision": "1"}))
    assert "Quality multipliers (high) must be a number" in body
    assert catalog_fingerprint(console) == before


def test_a_file_that_is_not_utf8_is_refused_as_the_cli_refuses_it(console, admin):
    """A Latin-1 catalog file or price map: refused, not stored with replacement characters."""
    before = catalog_fingerprint(console)
    exported = run_as_system(console, "catalog:exportCatalog")
    exported["models"][0]["description"] = "Modèle vidéo rapide"
    latin1 = json.dumps(exported, ensure_ascii=False).encode("latin-1")
    for url in ("/admin/catalog_file/plan", "/admin/catalog_file/apply"):
        body = page_text(admin.post(url, follow_redirects=True, data={
            "csrf_token": admin.token, "reason": "r",
            "file": (io.BytesIO(latin1), "catalog.json")}))
        assert "it is not UTF-8 text (byte 0xe8" in body and "save it as UTF-8" in body
    body = page_text(admin.post("/admin/catalog_file/prices/plan", follow_redirects=True, data={
        "csrf_token": admin.token, "source": "litellm",
        "file": (io.BytesIO('{"modèle": {}}'.encode("latin-1")), "map.json")}))
    assert "it is not UTF-8 text" in body
    assert catalog_fingerprint(console) == before


def ray_form(console, admin, **fields) -> dict:
    """The edit form of luma/ray-2-720p as a browser posts it untouched (an unticked box is
    not sent; text areas end lines with CRLF)."""
    ray = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    return {"csrf_token": admin.token, "modelId": ray["modelId"], "name": ray["name"],
            "provider": ray["provider"], "version": ray["version"],
            "category": ray["category"], "contentType": "video",
            "description": ray["description"].replace("\n", "\r\n"),
            "costPerSecond": str(ray["costPerSecond"]),
            "supportedDurations": ", ".join(map(str, ray["supportedDurations"])),
            "maxDuration": str(ray["maxDuration"]),
            "supportedQualities": ", ".join(ray["supportedQualities"]),
            "qualityMultipliers": json.dumps(ray["qualityMultipliers"]),
            "estimatedTimeSeconds": str(ray.get("estimatedTimeSeconds") or ""),
            "tags": ", ".join(ray["tags"]), "capabilities": ray["capabilities"],
            "inputModalities": ray["inputModalities"],
            "outputModalities": ray["outputModalities"], "task": ray.get("task") or "",
            "replicateModelId": ray.get("replicateModelId") or "",
            **({"isPremium": "y"} if ray["isPremium"] else {}),
            "isActive": "y", "expectedRevision": str(ray["revision"]), **fields}


def test_a_stale_save_takes_a_list_and_a_price_changed_meanwhile(console, admin):
    """Fields of every shape are taken in as they now stand (a list, an amount), before any
    price preview (which would show undoing their price as the change asked), and the next
    Save keeps them."""
    form = ray_form(console, admin, name="Mine")
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p", "patch": {
        "supportedDurations": [5, 9, 10], "costPerSecond": 0.2}})
    body = page_text(admin.post("/admin/models/edit/?id=2", data=form))
    (said,) = re.findall(r'alert-danger[^>]*>(.*?)</div>', body, re.S)
    assert "Not saved: test changed luma/ray-2-720p since you opened it." in said
    assert all(label in said for label in ("Supported durations (s)", "Max duration (s)",
                                           "Cost per second (USD)", "are now in the form"))
    assert "Check what the new price charges" not in body
    assert 'value="5, 9, 10"' in body and 'value="0.2"' in body and 'value="Mine"' in body
    now = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert f'name="expectedRevision" type="hidden" value="{now["revision"]}"' in body
    saved = admin.post("/admin/models/edit/?id=2", data={
        **form, "supportedDurations": "5, 9, 10", "maxDuration": "10", "costPerSecond": "0.2",
        "expectedRevision": str(now["revision"])})  # as the browser sends the form back
    assert saved.status_code == 302, re.findall(r"alert-[a-z]+[^>]*>(.*?)</div>",
                                                page_text(saved), re.S)
    after = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert (after["name"], after["supportedDurations"], after["costPerSecond"]) == (
        "Mine", [5, 9, 10], 0.2)


def test_a_price_that_leaves_an_active_model_unpriced_is_said_before_it_is_saved(console,
                                                                                   admin):
    """An active model given only a price that starts later, or a gap in its prices, answers
    NO_PRICE meanwhile: the preview says so (it was saved with no word)."""
    later = [{"effectiveFrom": "2099-06-01T00:00:00Z", "components": [
        {"unit": "second", "price": "0.2"}]}]
    body = page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
        console, admin, costPerSecond="", qualityMultipliers="", prices=json.dumps(later))))
    assert 'id="price-unpriced"' in body and "No price now, until 2099-06-01 00:00 UTC" in body
    paused = [{"effectiveFrom": None, "components": []}, *later]  # an entry that prices nothing
    body = page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
        console, admin, costPerSecond="", qualityMultipliers="", prices=json.dumps(paused))))
    assert "No price now, until 2099-06-01 00:00 UTC" in body
    gap = [{"effectiveFrom": None, "components": [{"unit": "second", "price": "0.2"}]},
           {"effectiveFrom": "2098-01-01T00:00:00Z", "components": []}, *later]
    body = page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
        console, admin, costPerSecond="", qualityMultipliers="", prices=json.dumps(gap))))
    assert "No price from 2098-01-01 00:00 UTC, until 2099-06-01 00:00 UTC" in body
    kept = page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
        console, admin, costPerSecond="0.2")))  # a price now: no such word
    assert "Check what the new price charges" in kept and 'id="price-unpriced"' not in kept


def _stamp(body: str) -> str:
    return re.search(r'name="pricePreviewed" type="hidden" value="([^"]*)"', body).group(1)


def test_a_price_previewed_before_a_conflict_is_previewed_again(console, admin):
    """A price seen against the old one, then refused as stale, is shown again against the
    price now in force before the next Save applies it (it was applied unseen)."""
    form = ray_form(console, admin, costPerSecond="0.3")
    seen = page_text(admin.post("/admin/models/edit/?id=2", data=form))
    assert "Check what the new price charges" in seen
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p", "patch": {
        "costPerSecond": 0.5}})
    stale = page_text(admin.post("/admin/models/edit/?id=2", data={
        **form, "pricePreviewed": _stamp(seen)}))
    assert "since you opened it" in stale and _stamp(stale) == ""
    now = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    again = page_text(admin.post("/admin/models/edit/?id=2", data={
        **form, "expectedRevision": str(now["revision"]), "pricePreviewed": ""}))
    assert "Check what the new price charges" in again  # against 0.5 now, not applied
    assert run_as_system(console, "models:getModelById", {
        "modelId": "luma/ray-2-720p"})["costPerSecond"] == 0.5


def test_a_price_the_rules_refuse_is_refused_not_previewed(console, admin):
    """A price with more places than a price may have: the function's refusal, not a preview
    of a figure no quote would give."""
    body = html.unescape(page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
        console, admin, costPerSecond="0.75000000000000000001"))))
    assert "Check what the new price charges" not in body
    assert "must have at most 6 decimal places" in body


def test_saving_an_untouched_form_changes_nothing(console, admin):
    """A description with line breaks comes back with CRLF, and an unticked "Pause when
    failing" is empty as stored: neither is a change (each was a new revision)."""
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p", "patch": {
        "description": "Line one\nLine two"}})
    before = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert before.get("pauseWhenFailing") is None
    saved = admin.post("/admin/models/edit/?id=2", data=ray_form(console, admin))
    assert saved.status_code == 302, page_text(saved)[:2000]
    after = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert after["revision"] == before["revision"]
    assert after["description"] == "Line one\nLine two"


def test_a_flag_set_false_elsewhere_is_stored_as_empty_and_saves_untouched(console, admin):
    """pauseWhenFailing false (the API, an import, a catalog file) and empty mean the same:
    stored one way, so the console's unticked box is no change."""
    ray = run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                        "patch": {"pauseWhenFailing": False}})
    assert ray.get("pauseWhenFailing") is None
    saved = admin.post("/admin/models/edit/?id=2", data=ray_form(console, admin))
    assert saved.status_code == 302, page_text(saved)[:2000]
    after = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert after["revision"] == ray["revision"]


def test_emptying_max_duration_gives_it_back_to_its_rule(console, admin):
    """"empty: the longest supported duration", as the API does it (it was kept as it was)."""
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                  "patch": {"maxDuration": 30}})
    saved = admin.post("/admin/models/edit/?id=2", data=ray_form(console, admin,
                                                                 maxDuration=""))
    assert saved.status_code == 302, page_text(saved)[:2000]
    after = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert after["maxDuration"] == max(after["supportedDurations"])


def test_an_inline_edit_of_a_column_that_is_not_editable_is_refused(console, admin):
    before = catalog_fingerprint(console)
    answer = admin.post("/admin/models/ajax/update/", data={
        "csrf_token": admin.token, "list_form_pk": "3", "name": "Ajax name"})
    assert answer.status_code == 400
    assert "Only Category can be edited in the list." in answer.get_data(True)
    assert catalog_fingerprint(console) == before
    fine = admin.post("/admin/models/ajax/update/", data={
        "csrf_token": admin.token, "list_form_pk": "3", "category": "fast"})
    assert fine.status_code == 200


@pytest.mark.parametrize("step", ["plan", "apply"])
def test_a_carried_price_map_that_is_not_ascii_is_refused(console, client, step):
    token = sign_in(client, "editor")
    before = catalog_fingerprint(console)
    answer = client.post(f"/admin/catalog_file/prices/{step}", data={
        "csrf_token": token, "source": "litellm", "payload": "é", "reason": "r"})
    assert "The carried map is damaged" in page_text(answer)
    assert catalog_fingerprint(console) == before


@pytest.mark.parametrize("active", [None, "", "true", "yes"])
def test_a_users_form_that_does_not_say_active_or_not_changes_nothing(console, admin, active):
    form = {"csrf_token": admin.token, "email": "editor@example.com", "role": "viewer"}
    if active is not None:
        form["isActive"] = active
    before = run_as_system(console, "access:listUsers")
    answer = admin.post("/admin/users/update", data=form, follow_redirects=True)
    assert "say whether the account is active" in page_text(answer)
    assert run_as_system(console, "access:listUsers") == before


def test_an_amount_is_sent_as_typed_and_checked_as_the_api_checks_it(console, admin):
    """The form sends the amount's text (less a "$"), not a float: the function's message
    quotes it as typed, and spellings the API refuses are refused here too."""
    before = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    for typed in ("0.0000001", "0.200000000000000"):
        form = ray_form(console, admin, costPerSecond=typed)
        shown = page_text(admin.post("/admin/models/edit/?id=2", data=form))  # the preview
        seen = re.search(r'name="pricePreviewed"[^>]*value="([^"]*)"', shown)
        answer = admin.post("/admin/models/edit/?id=2",
                            data={**form, "pricePreviewed": seen.group(1) if seen else ""})
        assert f"must have at most 6 decimal places, got {typed}" in page_text(answer), typed
    saved = admin.post("/admin/models/edit/?id=2",  # the stored 0.18, spelt otherwise
                       data=ray_form(console, admin, costPerSecond="$0.180"))
    assert saved.status_code == 302, page_text(saved)[:2000]
    after = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert after["revision"] == before["revision"]


def test_a_selection_of_more_ids_than_a_statement_takes_is_read_in_parts(seeded, admin):
    """A form may name more rows than PostgreSQL takes parameters in one statement (65,535;
    it was a 500 there): they are looked up in parts, ids of no model left out."""
    before = run_as_system(seeded, "models:getActiveModels")
    default = run_as_system(seeded, "models:getDefaultModel")["modelId"]
    other = next(m for m in before if m["modelId"] != default)
    ids = [other["_id"], other["_id"], *map(str, range(1_000, 71_000))]  # _id: the row id
    done = admin.post("/admin/models/bulk/disable/", follow_redirects=True, data={
        "csrf_token": admin.token, "rowid": ids, "reason": "r"})
    page_text(done)
    after = run_as_system(seeded, "models:getActiveModels")
    assert [m["modelId"] for m in after] == [m["modelId"] for m in before if m is not other]



def test_the_calculator_takes_fractional_seconds_of_audio(seeded, admin):
    """A transcription model priced per second of audio: 90.5 s is quoted as the engine quotes
    it (the field had taken whole numbers only); a count stays whole, each said in words."""
    model = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/listen-1", "name": "Acme Listen", "provider": "Acme",
        "contentType": "transcription", "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_audio_second", "price": "0.0001"},
            {"unit": "request", "price": "0.002"}]}]})
    url = f"/admin/models/details/?id={model['_id']}"
    form = page_text(admin.get(url))
    field = form[form.index('id="usage-inputAudioLengthSeconds"') - 200:][:400]
    assert 'step="any"' in field
    quoted = page_text(admin.get(f"{url}&calculate=1&inputAudioLengthSeconds=90.5&requests=1"))
    quote = quoted[quoted.index('id="quote"'):][:900]
    assert "90.5 s × " in quote and "$0.01105" in quote, quote  # 90.5 × 0.0001 + 0.002
    one = page_text(admin.get(f"{url}&calculate=1&inputAudioLengthSeconds=0&requests=1"))
    assert '<strong id="quote-credits">1</strong> credit</div>' in one  # $0.002: 1 credit
    refused = page_text(admin.get(f"{url}&calculate=1&inputAudioLengthSeconds=9,5&requests=1.5"))
    assert "a number such as 90.5" in refused and "Requests: a whole number" in refused
    hourly = run_as_system(seeded, "models:createModel", {
        "modelId": "acme/listen-2", "name": "Acme Listen 2", "provider": "Acme",
        "contentType": "transcription", "prices": [{"effectiveFrom": None, "components": [
            {"unit": "audio_hour", "price": "0.36"}]}]})
    quoted = page_text(admin.get(f"/admin/models/details/?id={hourly['_id']}&calculate=1"
                                 "&audioSeconds=90.5"))
    assert "90.5 s × $0.36 / audio hour = $0.00905" in quoted  # seconds, at a price per hour


def test_changing_a_models_kind_says_which_fields_it_cleared(console, admin):
    """A video model made a chat model loses its durations, qualities and per-second price (no
    chat model has them): the save says so by name, instead of clearing them silently."""
    chat_price = json.dumps([{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "1"}, {"unit": "output_tokens", "price": "2"}]}])
    form = ray_form(console, admin, contentType="chat", prices=chat_price)
    shown = page_text(admin.post("/admin/models/edit/?id=2", data=form))  # the price's preview
    seen = re.search(r'name="pricePreviewed"[^>]*value="([^"]*)"', shown)
    saved = admin.post("/admin/models/edit/?id=2", follow_redirects=True,
                       data={**form, "pricePreviewed": seen.group(1)})
    said = page_text(saved)
    assert "luma/ray-2-720p is now a chat model:" in said, said[:3000]
    for label in ("Supported durations (s)", "Max duration (s)", "Supported qualities",
                  "Cost per second (USD)"):
        assert label in said[said.index("is now a chat model"):][:600], label
    after = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert after["contentType"] == "chat" and after["supportedDurations"] == []


def test_a_price_entry_added_in_the_past_is_said_before_the_save(console, admin):
    """An entry starting last month changes what a quote for a moment since then answers: the
    preview says so (a correction may want it, so it is not refused)."""
    import time

    now = int(time.time() * 1000)
    past, future = now - 30 * 86_400_000, now + 30 * 86_400_000
    entry = {"effectiveFrom": None, "components": [{"unit": "second", "price": "0.18"}]}

    def shown(*later):
        schedule = json.dumps([entry, *({"effectiveFrom": at, "components": [
            {"unit": "second", "price": "0.2"}]} for at in later)])
        return page_text(admin.post("/admin/models/edit/?id=2", data=ray_form(
            console, admin, costPerSecond="", qualityMultipliers="", prices=schedule)))

    backdated = shown(past)
    assert 'id="price-backdated"' in backdated and "A price in the past changes" in backdated
    from admin.price_preview import backdated

    def priced(*entries):
        return {"contentType": "chat", "prices": [
            {"effectiveFrom": at, "components": [{"unit": "input_tokens", "price": price}]}
            for at, price in entries]}

    month = priced((None, "1"), (past, "2"))
    assert backdated(month, priced((None, "1"), (past, "3")), now) == past  # changed
    assert backdated(month, priced((None, "1")), now) == past  # removed
    assert backdated(month, priced((None, "5"), (past, "2")), now) is None  # the undated one
    assert backdated(month, priced((None, "1"), (past, "2"), (future, "4")), now) is None
    scheduled = shown(future)
    assert 'id="price-preview"' in scheduled and 'id="price-backdated"' not in scheduled


def test_a_catalog_files_plan_shows_a_price_change_as_money(console, admin):
    """A plan names each price that changes, in money ("$1.00 → $1.25 / 1M input tokens"),
    not the two schedules as JSON arrays."""
    run_as_system(console, "models:createModel", {
        "modelId": "acme/chat-3", "name": "Acme Chat", "provider": "Acme", "contentType": "chat",
        "prices": [{"effectiveFrom": None, "components": [
            {"unit": "input_tokens", "price": "1"}, {"unit": "output_tokens", "price": "2"}]}]})
    catalog = run_as_system(console, "catalog:exportCatalog")
    chat = next(m for m in catalog["models"] if m["modelId"] == "acme/chat-3")
    chat["prices"][0]["components"][0]["price"] = "1.25"
    before = catalog_fingerprint(console)
    shown = page_text(admin.post("/admin/catalog_file/plan", data={
        "csrf_token": admin.token, "content": json.dumps(catalog)}))
    change = shown[shown.index('class="plan-change"'):].split("</li>\n")[0]
    assert "Prices, input tokens, since always" in change, change
    assert "$1.00" in change and "$1.25" in change and "effectiveFrom" not in change, change
    assert catalog_fingerprint(console) == before


def test_a_bulk_confirmation_counts_the_models_it_changes(console, admin):
    """Three picked, one locked (skipped), one inactive already: "Disable 1 model", not 3."""
    models = run_as_system(console, "models:getActiveModels")
    default = run_as_system(console, "models:getDefaultModel")["modelId"]
    locked, live = sorted((m for m in models if m["modelId"] != default),
                          key=lambda m: m["modelId"])[:2]
    run_as_system(console, "models:lockModel", {"modelId": locked["modelId"]})
    off = run_as_system(console, "models:duplicateModel", {"modelId": live["modelId"],
                                                           "newModelId": "acme/copy-1"})
    assert off["isActive"] is False  # a copy starts inactive
    ids = "&".join(f"rowid={m['_id']}" for m in (locked, off, live))
    page = page_text(admin.get(f"/admin/models/confirm/disable/?{ids}"))
    question = re.search(r'id="confirm-question">([^<]*)<', page).group(1)
    assert question == f"Disable {live['name']}?", question
    assert re.search(r'id="confirm">\s*Disable\s*</button>', page), page
    assert f"{locked['modelId']}" in page and "is skipped" in page
    assert "1 already inactive: unchanged." in page
    # and by the states table for every action: restoring a live model, locking a locked
    # one, deleting the default change nothing, and are not counted
    ids = "&".join(f"rowid={m['_id']}" for m in (locked, live))
    for action, asked in (("restore", "Restore: nothing to do"), ("lock", f"Lock {live['name']}?"),
                          ("unlock", f"Unlock {locked['name']}?")):
        page = page_text(admin.get(f"/admin/models/confirm/{action}/?{ids}"))
        assert re.search(r'id="confirm-question">([^<]*)<', page).group(1) == asked, action
    default_row = run_as_system(console, "models:getDefaultModel")
    page = page_text(admin.get(f"/admin/models/confirm/delete/?rowid={live['_id']}"
                               f"&rowid={default_row['_id']}"))
    assert re.search(r'id="confirm-question">([^<]*)<', page).group(1) == f"Delete {live['name']}?"
    page = page_text(admin.get(f"/admin/models/confirm/restore/?rowid={live['_id']}"))
    assert re.search(r'id="confirm"\s+disabled', page), "nothing to do: the button is off"


def test_a_confirmation_says_why_a_deleted_model_is_passed_by(console, admin):
    """Enabling a deleted model, or making it (or a locked one, or the default) the default, is
    refused on the confirmation itself, with the reason the function would give; the page
    never claims the model is active already."""
    models = run_as_system(console, "models:getActiveModels")
    default = run_as_system(console, "models:getDefaultModel")
    gone, locked = sorted((m for m in models if m["modelId"] != default["modelId"]),
                          key=lambda m: m["modelId"])[:2]
    run_as_system(console, "models:deleteModel", {"modelId": gone["modelId"]})
    run_as_system(console, "models:lockModel", {"modelId": locked["modelId"]})
    page = page_text(admin.get(f"/admin/models/confirm/enable/?rowid={gone['_id']}"))
    assert re.search(r'id="confirm-question">([^<]*)<', page).group(1) == "Enable: nothing to do"
    assert "already" not in page, page
    assert f"{gone['modelId']}) is skipped: deleted (restore it first)." in page
    refused = "cannot be made the default: {} is {}"  # in setDefaultModel's words
    for row, why in (
            (gone, refused.format(gone["modelId"], "not active; activate or restore it first")),
            (locked, refused.format(locked["modelId"], "locked; unlock it before changing it")),
            (default, "is the default already")):
        page = page_text(admin.get(f"/admin/models/confirm/set-default/?rowid={row['_id']}"))
        question = re.search(r'id="confirm-question">([^<]*)<', page).group(1)
        assert question == "Set default: nothing to do", question
        assert f"{row['modelId']}) {why}." in page, page
        assert re.search(r'id="confirm"\s+disabled', page), "nothing to do: the button is off"
    page = page_text(admin.get(f"/admin/models/confirm/disable/?rowid={gone['_id']}"))
    assert f"{gone['modelId']}) is skipped: deleted, so already off." in page
    run_as_system(console, "models:unlockModel", {"modelId": locked["modelId"]})
    run_as_system(console, "models:lockModel", {"modelId": default["modelId"]})
    page = page_text(admin.get(f"/admin/models/confirm/set-default/?rowid={locked['_id']}"))
    assert (refused.format(default["modelId"], "locked; unlock it before changing it") + "."
            in page), page
    assert re.search(r'id="confirm"\s+disabled', page)
    run_as_system(console, "models:unlockModel", {"modelId": default["modelId"]})
    page = page_text(admin.get(f"/admin/models/confirm/set-default/?rowid={locked['_id']}"))
    assert f"{default['name']} stops being the default." in page
    assert not re.search(r'id="confirm"\s+disabled', page)


def test_a_bulk_disable_does_not_count_the_default_that_stays_on(console, admin):
    """The default goes off only with every other model: picked beside a model that stays on,
    it is skipped, and the question counts what the action will do."""
    models = run_as_system(console, "models:getActiveModels")
    default = run_as_system(console, "models:getDefaultModel")
    other = next(m for m in models if m["modelId"] != default["modelId"])
    assert len(models) > 2  # a third active model stays on
    ids = f"rowid={default['_id']}&rowid={other['_id']}"
    page = page_text(admin.get(f"/admin/models/confirm/disable/?{ids}"))
    question = re.search(r'id="confirm-question">([^<]*)<', page).group(1)
    assert question == f"Disable {other['name']}?", question
    assert f"{default['name']} ({default['modelId']}) is skipped: the default" in page
    done = page_text(admin.post("/admin/models/bulk/disable/", follow_redirects=True, data={
        "csrf_token": admin.token, "rowid": [default["_id"], other["_id"]]}))
    assert f"{other['modelId']} disabled." in done
    assert run_as_system(console, "models:getDefaultModel")["isActive"] is True


def test_a_refusal_in_the_console_names_no_function(console, admin):
    """The functions' messages point API callers at a function ("(models:setDefaultModel)");
    the console says the rest of the message, not the identifier."""
    default = run_as_system(console, "models:getDefaultModel")
    done = page_text(admin.post("/admin/models/bulk/delete/", follow_redirects=True, data={
        "csrf_token": admin.token, "rowid": [default["_id"]]}))
    assert "set another model as the default first" in done
    assert "(models:" not in done


def test_a_models_page_says_yes_or_no_for_a_flag(console, admin):
    ray = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    page = re.sub(r"\s+", " ", page_text(admin.get(f"/admin/models/details/?id={ray['_id']}")))
    assert "<td><b>Premium</b></td><td>No</td>" in page  # not Python's "False"
    run_as_system(console, "models:updateModel", {"modelId": "luma/ray-2-720p",
                                                  "patch": {"pauseWhenFailing": True}})
    page = re.sub(r"\s+", " ", page_text(admin.get(f"/admin/models/details/?id={ray['_id']}")))
    assert "<td><b>Pause when failing</b></td><td>Yes</td>" in page  # a nullable flag too


def test_opening_a_forms_answer_leads_to_its_page(console, admin):
    """A bookmark of a plan or a bulk action's address (they answer POSTs): its page, with a
    word, not a bare 405."""
    for url, page in (("/admin/catalog_file/plan", "/admin/catalog_file/"),
                      ("/admin/models/bulk/disable/", "/admin/models/")):
        answer = admin.get(url)
        assert (answer.status_code, answer.headers["Location"]) == (302, page), url
        assert "That address answers a form" in page_text(admin.get(page))
    assert admin.get("/admin/no-such-page").status_code == 404
    assert admin.get("/api/query").status_code == 405  # the API's own answer, in JSON


def test_a_bulk_restore_says_only_what_it_restored(console, admin):
    models = run_as_system(console, "models:getActiveModels")
    default = run_as_system(console, "models:getDefaultModel")["modelId"]
    live, gone = [m for m in models if m["modelId"] != default][:2]
    run_as_system(console, "models:deleteModel", {"modelId": gone["modelId"]})
    done = page_text(admin.post("/admin/models/bulk/restore/", follow_redirects=True, data={
        "csrf_token": admin.token, "rowid": [live["_id"], gone["_id"]]}))
    assert f"{gone['modelId']} restored." in done
    assert f"{live['modelId']} unchanged: already active." in done
    history = run_as_system(console, "history:getModelHistory", {
        "modelId": live["modelId"], "paginationOpts": {"numItems": 5, "cursor": None}})["page"]
    assert "restore" not in [entry["action"] for entry in history]


def test_a_save_after_someone_locked_the_model_keeps_what_was_typed(console, admin):
    """The form was opened, then an admin locked the model: the save is refused with the
    reason, and the form comes back with the typed name (it had been dropped by a redirect)."""
    form = ray_form(console, admin, name="Ray, renamed in vain")
    run_as_system(console, "models:lockModel", {"modelId": "luma/ray-2-720p"})
    before = catalog_fingerprint(console)
    answer = admin.post("/admin/models/edit/?id=2", data=form)
    assert answer.status_code == 200
    shown = page_text(answer)
    assert "Not saved:" in shown and "locked" in shown
    assert 'value="Ray, renamed in vain"' in shown
    assert catalog_fingerprint(console) == before


def test_a_video_model_missing_its_price_is_told_everything_it_lacks_at_once(console, admin):
    """No cost per second, durations or qualities: one save names all three and marks each
    field (it had named one a save), over the API and in the console alike."""
    with pytest.raises(FunctionError) as refused:
        run_as_system(console, "models:createModel", {
            "modelId": "acme/clip-2", "name": "Clip", "provider": "Acme", "contentType": "video"})
    assert refused.value.message == (
        "costPerSecond, supportedDurations and supportedQualities are required for a video "
        "model without prices (costPerSecond, supportedDurations and supportedQualities price "
        "it the simple way)")
    assert refused.value.data["missing"] == ["costPerSecond", "supportedDurations",
                                             "supportedQualities"]
    before = catalog_fingerprint(console)
    shown = page_text(admin.post("/admin/models/new/", data={"csrf_token": admin.token, **new_model(
        costPerSecond="", supportedDurations="", supportedQualities="")}))
    assert ("Not saved: fix Cost per second (USD), Supported durations (s), Supported "
            "qualities (marked below)") in shown
    marked = re.findall(r'id="(\w+)"[^>]*is-invalid|is-invalid[^>]*id="(\w+)"', shown)
    assert {a or b for a, b in marked} >= {"costPerSecond", "supportedDurations",
                                           "supportedQualities"}, marked
    assert catalog_fingerprint(console) == before
