"""A relay to a key's owner whose answer is lost says 503 owner_moved, whatever aiohttp's
client raised on the way (never a 500)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from bus.cluster.forwarding import Forwarder
from bus.errors import OwnerMoved


class LostAnswers:
    """A client session whose every request fails with the given exception."""

    def __init__(self, raised: BaseException) -> None:
        self.raised = raised

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise self.raised


@pytest.mark.parametrize(
    "raised",
    [
        aiohttp.ClientConnectionError("reset"),
        TimeoutError(),
        AttributeError("'NoneType' object has no attribute 'getall'"),  # seen from aiohttp
    ],
)
async def test_a_forward_without_an_answer_is_owner_moved(raised: BaseException) -> None:
    forwarder = Forwarder()
    forwarder._session = LostAnswers(raised)  # type: ignore[assignment]
    request = make_mocked_request("GET", "/v1/conversations/n/t/c")
    with pytest.raises(OwnerMoved) as caught:
        await forwarder.forward(request, "n/t/c", base="http://127.0.0.1:9", path_qs="/v1/x")
    assert caught.value.status == 503 and caught.value.code == "owner_moved"
    assert caught.value.details == {"key": "n/t/c"}
