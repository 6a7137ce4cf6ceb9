"""The controller's HTTP API keeps its published contract, checked through real HTTP.

A real controller process answers; the tests read its URL and token from the state directory
like any client. Every route of ``api/app.py`` is in the OpenAPI document, except the
dashboard's HTML pages (listed one by one in ``api/dashboard.BROWSER_ROUTES``, none under
``/v1/``) and its static files; every documented route and every page refuses a request
without the right token, the document is valid OpenAPI 3.1, and schemathesis, fuzzing each
operation from the document, never gets a server error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Mount, Route

from tests.fixtures.zerodown import Controller, Env
from zerodown.api.app import create_app
from zerodown.api.dashboard import BROWSER_ROUTES, STATIC_PATH
from zerodown.api.openapi import openapi_document
from zerodown.core.state import StateDir

pytestmark = pytest.mark.integration

OPEN = {("GET", "/healthz"), ("GET", "/openapi.json")}


def _connection(controller: Controller) -> tuple[str, str]:
    state = StateDir(str(controller.env.home))
    info, token = state.read_controller(), state.token()
    assert info is not None and token is not None
    return info.url, token


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
    }


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    """The API is documented route by route; the only routes left out are the dashboard's
    pages, each named in BROWSER_ROUTES and none under /v1/, and its static files."""
    app = create_app(cast(Any, None), token="unused")
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ()) - {"HEAD"}
    }
    mounts = [route for route in app.routes if not isinstance(route, Route)]
    assert [(type(m), m.path) for m in mounts] == [(Mount, STATIC_PATH)]
    pages = set(BROWSER_ROUTES)
    assert pages <= served
    assert not any(path.startswith("/v1/") for _, path in pages)
    assert served - pages == _documented()


def test_the_document_is_valid_openapi_3_1_and_documents_401_everywhere_guarded() -> None:
    document = openapi_document()
    validate(document)
    assert document["openapi"].startswith("3.1")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in OPEN:
                assert operation["security"] == []
            else:
                assert "401" in operation["responses"], (method, path)
                assert "security" not in operation  # the document-wide bearer applies


def test_every_documented_route_answers_401_json_without_the_right_token(
    controller: Controller,
) -> None:
    url, token = _connection(controller)
    guarded = sorted(_documented() - OPEN)
    assert len(guarded) >= 14
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, template in guarded:
            path = template.replace("{name}", "demo").replace("{revision}", "1")
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": token},
            ):
                response = client.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["error"]["code"] == "unauthorized"
        for method, path in sorted(OPEN):
            assert client.request(method, path).status_code == 200
        for method, template in BROWSER_ROUTES:  # pages: a sign-in page instead
            path = template.replace("{name}", "demo").replace("{revision}", "1")
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["content-type"].startswith("text/html")
                assert "zerodown dashboard" in response.text
        served = client.get("/openapi.json").json()
        assert served == openapi_document()
        ok = client.get("/v1/services", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {"services": []}


def test_bad_inputs_are_400_naming_the_field(controller: Controller) -> None:
    url, token = _connection(controller)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=10, headers=auth) as client:
        cases = [
            ("GET", "/v1/events?limit=abc", None, "limit"),
            ("GET", "/v1/events?after=99999999999999999999999", None, "after"),
            ("GET", "/v1/events?service=Not_A_Name", None, "service"),
            ("GET", "/v1/services/demo/releases/x1", None, "revision"),
            ("GET", "/v1/services/BAD/releases", None, "name"),
            ("GET", "/v1/services/demo/logs?since=soon", None, "since"),
            ("GET", "/v1/services/demo/logs?pattern=(", None, "pattern"),
            ("GET", "/v1/services/demo/logs?level=loud", None, "level"),
            ("GET", "/v1/services/demo/logs/patterns?pattern=(", None, "pattern"),
            ("GET", "/v1/services/demo/logs/patterns?lines=0", None, "lines"),
            ("POST", "/v1/services/demo/rollback", {"to": "two"}, "to"),
            ("POST", "/v1/services/demo/promote", {"full": "yes"}, "full"),
            ("POST", "/v1/services/demo/report", {"lang": "fr"}, "lang"),
            ("POST", "/v1/services", {"spec_text": 1, "spec_path": "x"}, "spec_text"),
            ("POST", "/v1/services", [1, 2], "body"),
        ]
        for method, path, body, field in cases:
            response = client.request(method, path, json=body)
            assert response.status_code == 400, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "bad_input" and error["field"] == field, error
        missing = client.get("/v1/services/demo")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_from_the_document_finds_no_server_error(
    controller: Controller, mode: GenerationMode
) -> None:
    """Requests generated from the served document (valid ones, then invalid ones), with the
    token, never get a 5xx; every answer has a documented status, content type and shape.

    The controller has no service, so no request can start a rollout: service routes answer
    404, and the spec texts generated for ``up`` and ``deploy`` never validate."""
    url, token = _connection(controller)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=10)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]
    if mode is GenerationMode.POSITIVE:
        checks.append(response_schema_conformance)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= len(_documented()) - 1  # it may skip its own document

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                base_url=url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
                checks=checks,
            )

        try:
            call()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid request to make.
            assert mode is GenerationMode.NEGATIVE, operation.label


def test_the_cli_exits_with_the_documented_code_of_each_error_kind(
    controller: Controller, tmp_path: Path
) -> None:
    """docs/exit-codes.md: 0 ok, 1 failed or unreachable, 2 bad input, 3 refused."""
    env = controller.env
    assert env.cli("status").code == 0
    missing = env.cli("status", "nosuch", "--json")
    assert missing.code == 2 and missing.json()["error"]["code"] == "not_found"
    assert env.cli("history", "Bad_Name").code == 2
    spec = env.write_spec(tmp_path, replicas=1)
    assert env.cli("up", str(spec), "--json").code == 0
    refused = env.cli("up", str(spec), "--json")
    assert refused.code == 3, refused.stdout + refused.stderr
    assert refused.json()["error"]["code"] == "refused"
    elsewhere = Env(home=tmp_path / "nowhere", env={**env.env, "ZERODOWN_HOME": ""})
    unreachable = elsewhere.cli("--state-dir", str(tmp_path / "nowhere"), "status", "--json")
    assert unreachable.code == 1
    assert unreachable.json()["error"]["code"] == "controller_unavailable"
