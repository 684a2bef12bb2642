"""Schemathesis against the served /openapi.json: every check, positive and negative examples.

The schema cannot express two cross-field rules (entity columns of equal length, start_ts <=
end_ts) or a request naming features that do not exist with the right join keys, so schema-valid
bodies may get 422; and bodies over the row limits (`maxItems`) get 413. Those statuses are
declared below; everything else is the library's default expectation. A schema-valid body may
be refused only for those reasons: a positive example answered "does not match the schema" for
any other rule fails the test (the document and the validation must agree).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from memory_backend import MemoryBackend
from schemathesis import GenerationMode
from server_support import serve

from potluck.server import ServerSettings, create_app
from potluck.server.auth import ApiKeyStore, AuditLog, ServerTables


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "registry.db"
    tables = ServerTables(f"sqlite:///{path}", "fuzz")
    audit = AuditLog(tables)
    keys = ApiKeyStore(tables, audit)
    _, admin = keys.create("admin", "test")
    app = create_app(
        MemoryBackend(), ServerSettings(auth="on", max_entity_rows=20, max_push_rows=20), keys=keys, audit=audit
    )
    with serve(app) as url:
        yield url, admin
    tables.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: tuple[str, str]) -> Any:
    url, admin = fuzz_target
    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {admin}"},
            "generation": {"mode": "all"},
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "413", "422"]},
                "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "413", "422"]},
            },
        }
    )
    return schemathesis.openapi.from_url(url + "/openapi.json", config=config)


OPERATIONS = [
    ("POST", "/get-online-features"),
    ("POST", "/push"),
    ("POST", "/write-to-online-store"),
    ("POST", "/materialize"),
    ("POST", "/materialize-incremental"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
]


def test_every_route_is_fuzzed(api_schema: Any) -> None:
    served = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert served == set(OPERATIONS)


# routes without a body or parameters have no invalid input: positive examples only
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST"
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m}{p}-{g.value}" for m, p, g in CASES])
def test_openapi_fuzz(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate()
        assert response.status_code < 500, response.text
        assert "Traceback" not in response.text
        if mode is GenerationMode.POSITIVE:
            _schema_agrees(case, response)

    run()


# The rules the schema cannot express; a schema-valid body may break only these.
CROSS_FIELD_RULES = ("must have the same length",)


def _schema_agrees(case: schemathesis.Case, response: Any) -> None:
    """A body the document calls valid must not be refused as not matching the schema."""
    if response.status_code != 422:
        return
    error = response.json()["error"]
    if error["message"] != "the request body does not match the schema":
        return  # valid, but not servable (unknown feature, missing join key, ...)
    broken = [d for d in error["details"] if not any(rule in d["message"] for rule in CROSS_FIELD_RULES)]
    assert not broken, f"schema-valid body refused: {case.body!r} -> {broken}"


VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/get-online-features"): {"features": ["driver_stats:trips"], "entities": {"driver_id": [1001]}},
    ("POST", "/push"): {"push_source_name": "driver_push", "df": {"driver_id": [1], "trips": [2]}},
    ("POST", "/materialize"): {"start_ts": "2024-01-01T00:00:00Z", "end_ts": "2024-01-02T00:00:00Z"},
    ("POST", "/materialize-incremental"): {"end_ts": "2024-01-02T00:00:00Z"},
    ("GET", "/metrics"): None,
}


@pytest.mark.parametrize(("method", "path"), list(VALID_BODIES))
def test_successful_calls_pass_every_check(
    api_schema: Any, fuzz_target: tuple[str, str], method: str, path: str
) -> None:
    """Random bodies rarely succeed; a successful call is what the auth-enforcement check probes."""
    operation = api_schema[path][method]
    body = VALID_BODIES[(method, path)]
    case = operation.Case(body=body, media_type="application/json") if body is not None else operation.Case()
    response = case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_target[1]}"})
    assert response.status_code == 200, response.text


AGREEMENT_CASES = [
    ("/push", "PushRequest", {"push_source_name": "driver_push", "df": {}}),
    ("/push", "PushRequest", {"push_source_name": "driver_push", "df": {"driver_id": [1], "trips": [2]}}),
    ("/get-online-features", "GetOnlineFeaturesRequest", {"features": ["0"], "entities": {"driver_id": [1]}}),
    ("/get-online-features", "GetOnlineFeaturesRequest", {"features": ["a:b:c"], "entities": {"driver_id": [1]}}),
    ("/get-online-features", "GetOnlineFeaturesRequest", {"features": [":trips"], "entities": {"driver_id": [1]}}),
    ("/get-online-features", "GetOnlineFeaturesRequest", {"features": ["driver_stats:trips"], "entities": {"0": [1]}}),
]


@pytest.mark.parametrize(("path", "model", "body"), AGREEMENT_CASES)
def test_the_document_and_the_validation_agree(
    fuzz_target: tuple[str, str], path: str, model: str, body: dict[str, Any]
) -> None:
    """Bodies schemathesis found where the document and the server disagreed."""
    import httpx
    import jsonschema_rs

    url, admin = fuzz_target
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10) as http:
        schema = http.get("/openapi.json").json()["components"]["schemas"][model]
        reply = http.post(path, json=body)
    refused = reply.status_code == 422 and reply.json()["error"]["message"].endswith("does not match the schema")
    assert refused == (not jsonschema_rs.is_valid(schema, body)), reply.text
