from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from agentbus_client import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=4, timeout=5.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)


@dataclass
class Recorder:
    """A fake fleet: answers each request with `answer(request)` and keeps what was sent."""

    answer: Callable[[httpx.Request], httpx.Response]
    sent: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.answer(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.sent[index].content)


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return FAST_RETRY
