"""The test harness's own shortcuts (tests/conftest.py) change nothing the tests see."""

import hashlib
import inspect

import pytest
from werkzeug.routing import IntegerConverter, Map, Rule

from tests.conftest import WERKZEUG_COMPILE_BUILDER
from wsgi import create_app

# The shared builders' key is what werkzeug 3.1.9's Rule._compile_builder reads. Another version
# may read more: this fails then, so that the key is checked again before the sharing is.
COMPILE_BUILDER_SOURCE = "a0ec55cf067ff5d5"


def _values(rule: Rule) -> dict:
    """What url_for passes a rule's builder: its variables, and its defaults as they are."""
    return {**{name: 7 if isinstance(converter, IntegerConverter) else "a b/ü"
               for name, converter in rule._converters.items()}, **(rule.defaults or {})}


def _builds_as_werkzeug_does(rule: Rule) -> None:
    values = _values(rule)
    own = WERKZEUG_COMPILE_BUILDER(rule, False).__get__(rule)
    assert rule._build(**values) == own(**values), rule.rule
    own_unknown = WERKZEUG_COMPILE_BUILDER(rule, True).__get__(rule)
    extra = {**values, "next": "/admin/?q=a b", "page": 2}
    assert rule._build_unknown(**extra) == own_unknown(**extra), rule.rule


def test_the_builder_werkzeug_compiles_is_the_one_the_key_was_made_for():
    source = inspect.getsource(WERKZEUG_COMPILE_BUILDER)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == COMPILE_BUILDER_SOURCE


def test_shared_url_builders_build_every_rules_urls_as_werkzeug_does(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    settings = {"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "test-secret"}
    apps = [create_app(settings), create_app(settings)]
    try:
        first, rules = ({rule.endpoint: rule for rule in app.url_map.iter_rules()}
                        for app in apps)
        assert len(rules) > 40  # the API's, the pages' and the console's
        for endpoint, rule in rules.items():
            # the second app's builders are the first's, not compiled again
            assert rule._build.__func__ is first[endpoint]._build.__func__, rule.rule
            _builds_as_werkzeug_does(rule)
    finally:
        for app in apps:
            app.extensions["catalog_db"].dispose()


@pytest.mark.parametrize("rules", [
    # one text, defaults of other names: each rule takes its own names as arguments
    [Rule("/m/<int:n>", endpoint="a"), Rule("/m/<int:n>", endpoint="b", defaults={"x": 1}),
     Rule("/m/<int:n>", endpoint="c", defaults={"y": 2})],
    # a default for the rule's own variable is baked in: one text, two values
    [Rule("/p/<int:page>", endpoint="a", defaults={"page": 1}),
     Rule("/p/<int:page>", endpoint="b", defaults={"page": 2})],
    # converters of one text with other arguments, and a path
    [Rule("/f/<path:rest>", endpoint="a"), Rule("/f/<string(length=2):rest>", endpoint="b")],
], ids=["other defaults", "own default", "converters"])
def test_shared_url_builders_keep_apart_what_werkzeug_would(rules):
    for each in ([rule.empty() for rule in rules], [rule.empty() for rule in rules]):
        Map(each)
        for rule in each:
            _builds_as_werkzeug_does(rule)


@pytest.mark.parametrize("options", [{"host_matching": True}, {"merge_slashes": False}, {}],
                         ids=["hosts", "slashes kept", "subdomains"])
def test_shared_url_builders_keep_hosts_subdomains_and_slashes_apart(options):
    if options.get("host_matching"):
        make = [Rule("/x", host="a.example", endpoint="a"),
                Rule("/x", host="<h>.example", endpoint="b")]
    elif "merge_slashes" in options:
        make = [Rule("/x//y", endpoint="a")]
    else:
        make = [Rule("/x", subdomain="api", endpoint="a"),
                Rule("/x", subdomain="<sub>", endpoint="b")]
    for _ in range(2):  # the second map's rules take the first's builders
        rules = [rule.empty() for rule in make]
        Map(rules, **options)
        for rule in rules:
            _builds_as_werkzeug_does(rule)
