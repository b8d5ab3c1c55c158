# Generated from _async/ by scripts/generate_sync.py: edit the async file, then run it.
"""The HTTP core: base URLs with failover, the key, timeouts, retries, errors, event streams.

Every request goes to the current base URL; a connection that cannot be made or breaks
moves the client to the next URL (any worker of the fleet answers any request). A
retriable failure (no answer, 429, 502-504) is retried with exponential backoff and jitter
by stamina, waiting Retry-After when the bus sends one, until the RetryPolicy's attempts
or time run out; then the last error is raised. Anything else raises at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import stamina

from agentbus_client._config import RetryPolicy, Timeouts
from agentbus_client._errors import TransportError
from agentbus_client._shared import Params, error_from_response, json_or_none, retry_backoff
from agentbus_client._sse import ServerSentEvent, SSEDecoder
from agentbus_client._tracing import trace_headers
from agentbus_client._version import __version__

JSON = Any


class SyncHTTP:
    """One connection pool to the fleet, shared by every resource and scoped copy of a client."""

    def __init__(
        self,
        base_urls: Sequence[str],
        api_key: str | None,
        *,
        timeouts: Timeouts,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not base_urls:
            raise ValueError("give at least one base URL")
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self._current = 0
        self.timeouts = timeouts
        self.retry = retry
        sent = {"User-Agent": f"agentbus-client-python/{__version__}", **(headers or {})}
        if api_key:
            sent["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(transport=transport, headers=sent, timeout=timeouts.for_requests())

    @property
    def base_url(self) -> str:
        """The URL requests go to now."""
        return self.base_urls[self._current]

    def url(self, path: str) -> str:
        return self.base_url + path

    def fail_over(self) -> None:
        """The current URL failed: the next request tries the next one."""
        self._current = (self._current + 1) % len(self.base_urls)

    def close(self) -> None:
        self.client.close()

    def retry_options(self) -> dict[str, Any]:
        """stamina's arguments for the client's RetryPolicy."""
        policy = self.retry
        return {
            "on": retry_backoff,
            "attempts": policy.attempts,
            "timeout": policy.timeout,
            "wait_initial": policy.wait_initial,
            "wait_max": policy.wait_max,
            "wait_jitter": policy.wait_jitter,
        }

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: JSON = None,
        timeout: float | None = None,
        answers: Callable[[httpx.Response], bool] | None = None,
    ) -> JSON:
        """The JSON answer of a successful request (retried as the module docstring says).

        answers: whether an error status is this call's answer all the same (an operation
        that declares a body of its own for it, as /readyz's 503 is a Health): then its
        body is returned at once, not retried and not raised."""
        for attempt in stamina.retry_context(**self.retry_options()):
            with attempt:
                return self._request_once(method, path, params, json, timeout, answers)
        raise AssertionError("stamina ends with an answer or an exception")  # pragma: no cover

    def _request_once(
        self,
        method: str,
        path: str,
        params: Params | None,
        body: JSON,
        timeout: float | None,
        answers: Callable[[httpx.Response], bool] | None,
    ) -> JSON:
        timeouts: Any = httpx.USE_CLIENT_DEFAULT
        if timeout is not None:
            timeouts = httpx.Timeout(timeout, connect=self.timeouts.connect, pool=self.timeouts.pool)
        try:
            response = self.client.request(
                method,
                self.url(path),
                params=params,
                json=body,
                headers=trace_headers(),
                timeout=timeouts,
            )
        except httpx.TransportError as exc:
            self.fail_over()
            raise TransportError(f"{method} {path}: {exc!r}") from exc
        if response.is_success or (answers is not None and answers(response)):
            return json_or_none(response)
        raise error_from_response(response)

    @contextmanager
    def open_events(
        self, path: str, params: Params | None = None, headers: dict[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """An open text/event-stream answer (its status checked), retried until it opens."""
        response: httpx.Response | None = None
        for attempt in stamina.retry_context(**self.retry_options()):
            with attempt:
                response = self._open_once(path, params, headers)
        assert response is not None
        try:
            yield response
        finally:
            response.close()

    def _open_once(self, path: str, params: Params | None, headers: dict[str, str] | None) -> httpx.Response:
        sent = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-store",
            **trace_headers(),
            **(headers or {}),
        }
        request = self.client.build_request(
            "GET", self.url(path), params=params, headers=sent, timeout=self.timeouts.for_streams()
        )
        try:
            response = self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            self.fail_over()
            raise TransportError(f"GET {path}: {exc!r}") from exc
        if response.is_success:
            return response
        try:
            response.read()
        finally:
            response.close()
        raise error_from_response(response)


def server_sent_events(response: httpx.Response) -> Iterator[ServerSentEvent]:
    """The events of an open event stream, as they arrive."""
    decoder = SSEDecoder()
    for chunk in response.iter_bytes():
        for event in decoder.feed(chunk):
            yield event
