"""The public surface is deliberate, the sync client is the generated one, tracing works."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import agentbus_client as ab

from .conftest import FAST_RETRY, Recorder

PACKAGE = Path(ab.__file__).parent  # as installed
SOURCE = Path(__file__).resolve().parents[1]  # sdk/python


def test_public_names() -> None:
    for name in ab.__all__:
        assert hasattr(ab, name), name
    assert {"AsyncClient", "Client", "AgentRuntime", "APIError", "TransportError", "models"} <= set(
        ab.__all__
    )
    assert all(not n.startswith("_") or n == "__version__" for n in ab.__all__)
    assert (PACKAGE / "py.typed").exists()


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    import sys

    sys.path.insert(0, str(SOURCE / "scripts"))
    try:
        import generate_sync
    finally:
        sys.path.pop(0)
    with tempfile.TemporaryDirectory() as out:
        for made in generate_sync.generate(Path(out)):
            committed = SOURCE / "src" / "agentbus_client" / "_sync" / made.name
            assert made.read_text() == committed.read_text(), (
                f"{committed} is stale: run scripts/generate_sync.py"
            )


def test_requests_carry_the_current_traceparent() -> None:
    recorder = Recorder(lambda _: httpx.Response(200, json={"status": "ok", "broker": True, "ready": True}))
    context = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=False, trace_flags=TraceFlags(1))
    with ab.Client("http://bus", transport=httpx.MockTransport(recorder), retry=FAST_RETRY) as bus:
        bus.system.health()
        with trace.use_span(NonRecordingSpan(context)):
            bus.system.health()
    assert "traceparent" not in recorder.sent[0].headers
    assert recorder.sent[1].headers["traceparent"] == f"00-{0x1234:032x}-{0x5678:016x}-01"
