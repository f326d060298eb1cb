"""Every console page, as a viewer, an editor and an admin see it (and the sign-in page, as
anyone does), checked in Chromium by axe-core (npm, pinned in tests/browser/package.json):
no serious or critical violations.

The pages are enumerated from the app's registered views: every GET route of a console view is
visited, so a new page is checked without touching this file. A route that needs arguments
says which in PAGE_ARGUMENTS (a test fails until it does); routes that answer a file or JSON
are named in NOT_PAGES.
"""

# The browser fixtures are imported from test_console_browser.py and named as parameters.
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.test_console_browser import console, fill_new_model, sign_in  # noqa: F401

AXE = Path(__file__).parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ROLES = ("viewer", "editor", "admin")
SERIOUS = ("serious", "critical")

# Routes of console views that answer a download, JSON or a static file, not a page.
NOT_PAGES = {"admin.static", "models.ajax_lookup", "models.export", "catalog_file.export",
             "auth.sso_start", "auth.sso_callback"}
# What a page needs in its URL to show something; each entry is one visit. Row 2 is
# luma/ray-2-720p (active, not the default), row 3 the default.
PAGE_ARGUMENTS = {
    "models.index_view": [{}, {"search": "luma"}],
    "models.details_view": [{"id": 2}],
    "models.edit_view": [{"id": 2}],
    "models.revert_view": [{"id": 3, "revision": 1}],
    "models.confirm_view": [{"what": "set-default", "rowid": 2},
                            {"what": "disable", "rowid": [1, 2, 3]},
                            {"what": "lock", "rowid": 2},
                            {"what": "enable", "matching": 1, "search": "luma"}],
}
# Violations on pages other engineers own (home, usage, import/export), reported to them;
# each is (endpoint, rule). Remove an entry when its page is fixed.
KNOWN_ELSEWHERE: set[tuple[str, str]] = set()  # (endpoint, rule) waived: none

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def console_pages(app: Flask) -> list[tuple[str, dict]]:
    """(endpoint, arguments) of every page of the console: the GET routes of its views."""
    views = {view.endpoint for view in app.extensions["admin"][0]._views}
    pages = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".")[0]
        if (blueprint not in views and blueprint != "auth") or "GET" not in rule.methods \
                or rule.endpoint in NOT_PAGES or rule.endpoint == "auth.sign_in":
            continue
        needs = PAGE_ARGUMENTS.get(rule.endpoint)
        assert needs is not None or not rule.arguments, \
            f"{rule.endpoint} needs arguments: say which in PAGE_ARGUMENTS"
        pages += [(rule.endpoint, args) for args in (needs or [{}])]
    return sorted(pages, key=lambda page: page[0])


def url_of(app: Flask, endpoint: str, args: dict) -> str:
    with app.test_request_context():
        from flask import url_for
        return url_for(endpoint, **args)


def violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"]}))
        .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))""")
    return [v for v in found if v["impact"] in SERIOUS]


def checked(page, url: str, endpoint: str) -> list[str]:
    """Visit `url` and describe its serious violations (those known elsewhere left out)."""
    page.goto(url)
    return [f"{endpoint} {url}: {v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
            for v in violations(page) if (endpoint, v["id"]) not in KNOWN_ELSEWHERE]


@pytest.fixture
def axe_page(browser):
    """A page whose content security policy lets the test inject axe-core (the console's own
    scripts run as they always do)."""
    assert AXE.exists(), "run `make install-test` (npm ci in tests/browser) first"
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    yield context.new_page()
    context.close()


def test_the_page_list_covers_every_view(seeded):
    """Each registered console view has at least one page checked below."""
    pages = {endpoint.split(".")[0] for endpoint, _ in console_pages(seeded)}
    views = {view.endpoint for view in seeded.extensions["admin"][0]._views}
    assert views <= pages, views - pages


@pytest.mark.parametrize("role", ROLES)
def test_every_console_page_passes_axe(console, seeded, axe_page, role):
    """What each role sees (a page it may not use shows the styled refusal, checked too)."""
    sign_in(axe_page, console.url, role)
    found = []
    for endpoint, args in console_pages(seeded):
        found += checked(axe_page, console.url + url_of(seeded, endpoint, args), endpoint)
    assert found == [], "\n".join(found)


def test_sign_in_and_refusal_pages_pass_axe(console, seeded, axe_page):
    found = checked(axe_page, f"{console.url}/auth/sign-in", "auth.sign_in")
    sign_in(axe_page, console.url, "viewer")
    found += checked(axe_page, f"{console.url}/admin/users/", "users.index (refused)")
    assert "Not allowed" in axe_page.locator("h1").inner_text()
    assert found == [], "\n".join(found)


def test_forms_that_come_back_pass_axe(console, seeded, axe_page):
    """A form refused field by field, and a price change's preview: states a GET cannot reach."""
    page = axe_page
    sign_in(page, console.url, "admin")
    page.goto(f"{console.url}/admin/models/new/")
    fill_new_model(page, supportedDurations="5, ten")
    page.click("input[type=submit][value=Save]")
    page.locator("#supportedDurations.is-invalid").wait_for()
    found = [f"refused create form: {v['id']}: {v['help']} at {v['nodes']}"
             for v in violations(page)]
    page.goto(f"{console.url}/admin/models/edit/?id=2")
    page.fill("#costPerSecond", "0.25")
    page.click("input[type=submit][value=Save]")
    page.locator("#price-preview").wait_for()
    found += [f"price preview: {v['id']}: {v['help']} at {v['nodes']}" for v in violations(page)]
    assert found == [], "\n".join(found)
