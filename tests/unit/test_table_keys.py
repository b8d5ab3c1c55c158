"""Faust encodes table keys as JSON with orjson when it is installed (a dependency since the
publish path was profiled): stored keys must stay the bytes the stdlib encoder wrote, or a
store written before could not be read after."""

from __future__ import annotations

import json

import pytest
from faust.utils import json as faust_json

from bus.keys.store import tenant_quota_key
from bus.rules.store import rule_set_key


@pytest.mark.parametrize(
    "key",
    [
        "demo/acme/orders",
        tenant_quota_key("demo", "acme"),
        rule_set_key("demo", "acme"),
        "3f9c1a2b",
        "a.b_c:d-e|f",
    ],
)
def test_an_ascii_key_is_encoded_as_the_stdlib_encodes_it(key: str) -> None:
    encoded = faust_json.dumps(key)
    as_bytes = encoded if isinstance(encoded, bytes) else encoded.encode()
    assert as_bytes == json.dumps(key, separators=(",", ":")).encode()


def test_faust_uses_orjson() -> None:
    assert faust_json.orjson is not None
