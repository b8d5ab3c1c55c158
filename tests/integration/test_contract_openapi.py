"""contract/ (the fixtures every SDK's unit tests load) matches the fleet's /openapi.json.

Every operation has a request fixture, every fixture names a real operation, bodies and
answers validate against the OpenAPI schemas, and every error code of the server is in
contract/errors.json with its status and retriable flag. So an API change the fixtures
miss fails here. The document comes from a running worker (not from importing the route
table), so this test does not depend on where the server's modules live.
"""

from __future__ import annotations

import json
import re
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bus.errors import all_error_classes
from tests.fleet import Fleet

pytestmark = pytest.mark.integration

CONTRACT = Path(__file__).resolve().parent.parent.parent / "contract"
DOCS_ERRORS = CONTRACT.parent / "docs" / "errors.md"
RETRIABLE_STATUSES = {429, 502, 503, 504}
Operation = tuple[str, str]  # (METHOD, path template)


@pytest.fixture(scope="module")
def openapi(fleet: Fleet) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{fleet.urls[0]}/openapi.json", headers={"Authorization": f"Bearer {fleet.admin_key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        doc: dict[str, Any] = json.load(answer)
    return doc


@cache
def request_fixtures() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((CONTRACT / "requests").glob("*.json")):
        for fixture in json.loads(path.read_text())["fixtures"]:
            found.append({**fixture, "file": path.name})
    return found


def error_fixtures() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONTRACT / "errors.json").read_text())
    return loaded


def operations(doc: dict[str, Any]) -> dict[Operation, dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, by_method in doc["paths"].items()
        for method, op in by_method.items()
    }


def template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$")


def operation_of(doc: dict[str, Any], method: str, path: str) -> list[Operation]:
    return [
        (m, template)
        for (m, template) in operations(doc)
        if m == method and template_regex(template).match(path)
    ]


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """Validates against schema, resolving #/components/... in the OpenAPI document."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def schema_errors(doc: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(doc, schema).iter_errors(instance)
    ]


def fixture_id(fixture: dict[str, Any]) -> str:
    return f"{fixture['file']}: {fixture['name']}"


def test_every_operation_has_a_request_fixture(openapi: dict[str, Any]) -> None:
    covered = {(f["operation"]["method"], f["operation"]["path"]) for f in request_fixtures()}
    missing = sorted(set(operations(openapi)) - covered)
    assert not missing, f"operations without a fixture in contract/requests: {missing}"


def test_every_fixture_names_a_real_operation_and_matches_it(openapi: dict[str, Any]) -> None:
    problems = []
    for f in request_fixtures():
        declared = (f["operation"]["method"], f["operation"]["path"])
        if declared not in operations(openapi):
            problems.append(f"{fixture_id(f)}: {declared} is not an operation of /openapi.json")
            continue
        matched = operation_of(openapi, f["request"]["method"], f["request"]["path"])
        if matched != [declared]:
            problems.append(
                f"{fixture_id(f)}: request {f['request']['method']} {f['request']['path']} matches {matched}"
            )
    assert not problems, "\n".join(problems)


def test_fixture_parameters_are_declared(openapi: dict[str, Any]) -> None:
    problems = []
    for f in request_fixtures():
        op = operations(openapi).get((f["operation"]["method"], f["operation"]["path"]))
        if op is None:
            continue  # reported by the test above
        declared = {(p["in"], p["name"].lower()) for p in op.get("parameters", [])}
        for name in f["request"]["query"]:
            if ("query", name.lower()) not in declared:
                problems.append(f"{fixture_id(f)}: query parameter {name} is not declared")
        for name in f["request"]["headers"]:
            if name in ("content-type", "accept"):
                continue
            if ("header", name.lower()) not in declared:
                problems.append(f"{fixture_id(f)}: header {name} is not declared")
    assert not problems, "\n".join(problems)


def test_fixture_bodies_validate_against_the_request_schemas(openapi: dict[str, Any]) -> None:
    problems = []
    for f in request_fixtures():
        op = operations(openapi).get((f["operation"]["method"], f["operation"]["path"]))
        if op is None:
            continue
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        has_body = "body" in f["request"]
        if schema is None:
            if has_body:
                problems.append(f"{fixture_id(f)}: sends a body the operation does not take")
            continue
        if not has_body:
            problems.append(f"{fixture_id(f)}: the operation takes a body, the fixture sends none")
            continue
        problems += [
            f"{fixture_id(f)}: request body {e}" for e in schema_errors(openapi, schema, f["request"]["body"])
        ]
    assert not problems, "\n".join(problems)


def test_fixture_answers_validate_against_the_response_schemas(openapi: dict[str, Any]) -> None:
    problems = []
    for f in request_fixtures():
        op = operations(openapi).get((f["operation"]["method"], f["operation"]["path"]))
        if op is None:
            continue
        response = f["response"]
        status = str(response["status"])
        declared = op["responses"].get(status)
        if response["status"] < 400 and declared is None and "documented in" in f.get("notes", ""):
            declared = success_of(op)  # a documented second success (e.g. 200 for a retried create)
        if response["status"] < 400 and declared is None:
            problems.append(
                f"{fixture_id(f)}: status {status} is not a success of the operation "
                f"({list(op['responses'])})"
            )
            continue
        if response["status"] >= 400:
            schema = {"$ref": "#/components/schemas/ErrorBody"}
            if declared is not None:  # a body of its own (/readyz's 503 is a Health), else an ErrorBody
                schema = declared.get("content", {}).get("application/json", {}).get("schema", schema)
        else:
            content = declared.get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if "text/event-stream" in content and "body_text" not in response:
                problems.append(f"{fixture_id(f)}: an event stream answer needs body_text")
        if schema is not None and "body" in response:
            problems += [
                f"{fixture_id(f)}: response {e}" for e in schema_errors(openapi, schema, response["body"])
            ]
    assert not problems, "\n".join(problems)


def success_of(op: dict[str, Any]) -> dict[str, Any]:
    declared: dict[str, Any] = next(r for status, r in op["responses"].items() if status.startswith("2"))
    return declared


def test_event_stream_fixtures_carry_data_that_validates(openapi: dict[str, Any]) -> None:
    """The JSON in the data: lines of record/delivery/message events matches its model."""
    models = {"record": "DeliveredRecord", "delivery": "Delivery", "message": "Message", "end": "StreamEnd"}
    problems, checked = [], 0
    for f in request_fixtures():
        text = f["response"].get("body_text", "")
        if f["response"]["headers"].get("content-type") != "text/event-stream":
            continue
        for block in text.split("\n\n"):
            event = re.search(r"^event: (\w+)$", block, re.M)
            data = re.search(r"^data: (.*)$", block, re.M)
            if event and data and event.group(1) in models:
                schema = {"$ref": f"#/components/schemas/{models[event.group(1)]}"}
                problems += [
                    f"{fixture_id(f)}: {event.group(1)} {e}"
                    for e in schema_errors(openapi, schema, json.loads(data.group(1)))
                ]
                checked += 1
    assert checked >= 10
    assert not problems, "\n".join(problems)


def server_error_codes() -> dict[str, tuple[int, bool]]:
    return {cls.code: (cls.status, cls.retriable) for cls in all_error_classes()}


def documented_error_codes() -> dict[str, int]:
    """The code table of docs/errors.md (a row may name two codes)."""
    found: dict[str, int] = {}
    for row in re.finditer(r"^\| (`[^|]+`) \| (\d{3}) \|", DOCS_ERRORS.read_text(), re.M):
        for code in re.findall(r"`(\w+)`", row.group(1)):
            found[code] = int(row.group(2))
    return found


def test_every_server_error_code_is_in_the_error_fixtures() -> None:
    fixtures = {e["code"]: e for e in error_fixtures()["errors"]}
    problems = []
    for code, (status, retriable) in sorted(server_error_codes().items()):
        e = fixtures.get(code)
        if e is None:
            problems.append(f"{code}: missing from contract/errors.json")
            continue
        if (e["status"], e["response"]["status"]) != (status, status):
            problems.append(
                f"{code}: the server answers {status}, "
                f"the fixture says {e['status']}/{e['response']['status']}"
            )
        if e["retriable"] != (retriable or status in RETRIABLE_STATUSES):
            problems.append(f"{code}: retriable is {e['retriable']}, the server says {retriable}")
        if e["response"]["body"]["error"]["code"] != code:
            problems.append(f"{code}: the sample body has code {e['response']['body']['error']['code']}")
    stale = sorted(set(fixtures) - set(server_error_codes()))
    problems += [f"{code}: in contract/errors.json but not a code of the server" for code in stale]
    assert not problems, "\n".join(problems)


def test_every_documented_error_code_is_in_the_error_fixtures() -> None:
    fixtures = {e["code"]: e["status"] for e in error_fixtures()["errors"]}
    documented = documented_error_codes()
    assert len(documented) > 50
    wrong = {
        code: (status, fixtures.get(code))
        for code, status in documented.items()
        if fixtures.get(code) != status
    }
    assert not wrong, f"docs/errors.md (status) vs contract/errors.json (status): {wrong}"


def test_error_bodies_validate_against_the_error_schema(openapi: dict[str, Any]) -> None:
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    problems = []
    for e in error_fixtures()["errors"]:
        problems += [f"{e['code']}: {m}" for m in schema_errors(openapi, schema, e["response"]["body"])]
    assert not problems, "\n".join(problems)


def test_request_fixtures_use_error_codes_the_server_has() -> None:
    codes = server_error_codes()
    for f in request_fixtures():
        body = f["response"].get("body")
        # an error status with a body of its own (/readyz's 503) is checked against its schema above
        if f["response"]["status"] >= 400 and "error" in body:
            code = body["error"]["code"]
            assert code in codes, fixture_id(f)
            assert codes[code][0] == f["response"]["status"], fixture_id(f)
