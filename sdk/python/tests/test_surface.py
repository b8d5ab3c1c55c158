"""The public surface is deliberate, the sync client is the generated one, tracing works."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
from opentelemetry import propagate, trace
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


async def test_an_agent_handles_a_message_in_the_trace_of_its_traceparent() -> None:
    """The handler and the ack that follows it continue the message's trace (without an
    SDK installed, under the message's own span)."""
    recorder = Recorder(lambda _: httpx.Response(200, json={"acked": 1}))
    client = ab.AsyncClient(
        "http://bus",
        "k3y",
        namespace="demo",
        tenant="acme",
        agent_id="tool",
        transport=httpx.MockTransport(recorder),
        retry=FAST_RETRY,
    )
    runtime = ab.AgentRuntime(client)
    seen: list[dict[str, str]] = []

    @runtime.on("*")
    async def handler(message: ab.models.agents.InboxMessage) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        seen.append(carrier)

    traceparent = f"00-{0xABC:032x}-{0xDEF:016x}-01"
    for headers in ({"traceparent": traceparent}, {}):
        message = ab.models.agents.InboxMessage.model_validate(
            {
                "delivery_id": "d-1",
                "delivery_count": 1,
                "message_id": "m-1",
                "to": "demo/acme/tool",
                "content_type": "application/json",
                "headers": headers,
                "payload": {},
                "sent_at": 0,
            }
        )
        await runtime.handle(message)
    await client.aclose()
    assert seen == [{"traceparent": traceparent}, {}]
    assert recorder.sent[0].headers["traceparent"] == traceparent  # the ack
    assert "traceparent" not in recorder.sent[1].headers
