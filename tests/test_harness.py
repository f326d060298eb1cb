"""The test harness's own shortcuts (tests/conftest.py) change nothing the tests see."""

from werkzeug.routing import IntegerConverter, Rule

from tests.conftest import WERKZEUG_COMPILE_BUILDER
from wsgi import create_app


def _values(rule: Rule) -> dict:
    return {name: 7 if isinstance(converter, IntegerConverter) else "a b/ü"
            for name, converter in rule._converters.items()}


def test_shared_url_builders_build_every_rules_urls_as_werkzeug_does(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    settings = {"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "test-secret"}
    apps = [create_app(settings), create_app(settings)]  # the second takes the first's builders
    try:
        rules = list(apps[1].url_map.iter_rules())
        assert len(rules) > 40  # the API's, the pages' and the console's
        for rule in rules:
            values = _values(rule)
            own = WERKZEUG_COMPILE_BUILDER(rule, False).__get__(rule)
            assert rule._build(**values) == own(**values), rule.rule
            own_unknown = WERKZEUG_COMPILE_BUILDER(rule, True).__get__(rule)
            extra = {**values, "next": "/admin/?q=a b", "page": 2}
            assert rule._build_unknown(**extra) == own_unknown(**extra), rule.rule
    finally:
        for app in apps:
            app.extensions["catalog_db"].dispose()
