"""Hostile input, generated: Schemathesis against the OpenAPI document built from the validators.

Every public function is an operation (`/api/run/{module}/{function}`). Generated cases, valid
and invalid, must never get a 5xx, and every answer must conform to the document. Invalid
arguments are answered 200 with a function error, as the Convex wire contract wants, so
Schemathesis's "negative data must get a 4xx" check does not apply and is left out.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from engine.runtime import REGISTRY
from wire.openapi import document

EXAMPLES_PER_OPERATION = 25


@pytest.mark.sweep
def test_no_generated_request_breaks_the_api(seeded, make_token):
    token = make_token("catalog:write", "stats:write")
    # Schemathesis sends invalid credentials to every operation and wants them refused with
    # 401; past INVALID_TOKENS_PER_MINUTE from one address they are refused with 429 instead
    # (tests/test_hardening.py), so that limit is off here.
    seeded.config["INVALID_TOKENS_PER_MINUTE"] = 0
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", seeded)
    cases: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            cases[case.operation.label] = cases.get(case.operation.label, 0) + 1
            case.call_and_validate(
                # Schemathesis's WSGI transport says it accepts gzip but does not decode it;
                # compressed answers are tested in test_wire.py and by the Convex client.
                headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
                excluded_checks=[negative_data_rejection, positive_data_acceptance],
            )

        run()
    public = [fn for fn in REGISTRY.values() if not fn.internal]
    assert len(cases) == len(public)
    assert sum(cases.values()) >= 300


def test_document_names_every_public_function(client):
    served = client.get("/api/openapi.json").get_json()
    assert served == document() and served["openapi"] == "3.1.0"
    operations = {op["post"]["operationId"] for op in served["paths"].values()}
    assert operations == {name for name, fn in REGISTRY.items() if not fn.internal}
    stats = served["paths"]["/api/run/models/updateModelStats"]["post"]
    assert stats["security"] == [{"bearer": []}]
    args = stats["requestBody"]["content"]["application/json"]["schema"]["properties"]["args"]
    assert args["required"] == ["modelId", "generationTime", "success"]
    assert args["additionalProperties"] is False
