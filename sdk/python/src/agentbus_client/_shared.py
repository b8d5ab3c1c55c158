"""What the async and the sync client share and what does no I/O: who the client acts as,
how bodies are built from the wire models, how answers become errors, what is retried."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from agentbus_client._errors import APIError, TransportError, error_from_answer

M = TypeVar("M", bound=BaseModel)
# Query parameters: a name to a value, or to values sent in order (a repeated parameter).
Params: TypeAlias = Mapping[str, str | Sequence[str]]
__all__ = ["Scope"]


@dataclass(frozen=True)
class Scope:
    """Whom calls are about: a tenant (namespace and tenant) and, for agent calls, an agent.

    Methods name topics, subscriptions, agents and conversations by their id in this tenant,
    or by `namespace/tenant/id` to reach another tenant (a key that may)."""

    namespace: str | None = None
    tenant: str | None = None
    agent_id: str | None = None

    def tenant_parts(self) -> tuple[str, str]:
        if self.namespace is None or self.tenant is None:
            raise ValueError("this client has no tenant: pass namespace= and tenant= (or use with_scope)")
        return self.namespace, self.tenant

    def key_of(self, ref: str) -> tuple[str, str, str]:
        """(namespace, tenant, id) of an id in this tenant, or of a namespace/tenant/id."""
        parts = ref.split("/")
        if len(parts) == 3:
            return parts[0], parts[1], parts[2]
        if len(parts) != 1:
            raise ValueError(f"{ref!r} is neither an id nor namespace/tenant/id")
        namespace, tenant = self.tenant_parts()
        return namespace, tenant, ref

    def me(self, given: str | None = None) -> str:
        """The acting agent: the one given, else the client's agent_id."""
        agent = given if given is not None else self.agent_id
        if agent is None:
            raise ValueError("no agent: pass the agent's id, or give the client an agent_id")
        return agent


def path(*segments: str) -> str:
    """/v1/... with each segment quoted (ids are plain already; this keeps odd input in its segment)."""
    return "/v1/" + "/".join(quote(s, safe="") for s in segments)


def tenant_path(kind: str, scope: Scope, *rest: str) -> str:
    return path(kind, *scope.tenant_parts(), *rest)


def keyed_path(kind: str, scope: Scope, ref: str, *rest: str) -> str:
    return path(kind, *scope.key_of(ref), *rest)


def body_of(model: type[BaseModel], **fields: Any) -> dict[str, Any]:
    """The JSON body for a request model, from the fields given (None: not given).

    The model checks the fields here, before anything is sent (pydantic.ValidationError),
    and only what was given is sent, so the bus applies its own defaults."""
    given = {k: v for k, v in fields.items() if v is not None or k in _NULL_IS_A_VALUE}
    return model.model_validate(given, strict=False).model_dump(
        mode="json", by_alias=True, exclude_unset=True
    )


_NULL_IS_A_VALUE = ("payload", "data", "result")  # JSON null is a payload like any other


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def parse(model: type[M], answer: Any) -> M:
    """An answer as its model; lax, as JSON is (request models are strict: enums from strings)."""
    return model.model_validate(answer, strict=False)


def query(**params: Any) -> dict[str, str]:
    """Query parameters that were given, as strings."""
    return {k: _query_value(v) for k, v in params.items() if v is not None}


def body_answers(status: int, model: type[BaseModel]) -> Callable[[httpx.Response], bool]:
    """An error status whose body is the operation's own answer, when it is a `model` (the
    Health of /readyz's 503); an error body, a proxy's page, any other status stay errors."""

    def answers(response: httpx.Response) -> bool:
        if response.status_code != status:
            return False
        try:
            model.model_validate_json(response.content)
        except ValidationError:
            return False
        return True

    return answers


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def new_message_id() -> str:
    """A fresh id, so that a retried publish or append is recognised as the same one."""
    return uuid.uuid4().hex


def new_id(nbytes: int = 16) -> str:
    return secrets.token_hex(nbytes)


def error_from_response(response: httpx.Response) -> APIError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return error_from_answer(response.status_code, body, retry_after_of(response))


def retry_after_of(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the bus sends whole seconds; an HTTP date is not used)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def retry_backoff(exc: Exception) -> bool | float:
    """stamina's retry hook: retry what is retriable, waiting Retry-After when the bus said."""
    if isinstance(exc, APIError):
        if not exc.retriable:
            return False
        return exc.retry_after if exc.retry_after is not None else True
    return isinstance(exc, TransportError)


def json_or_none(response: httpx.Response) -> Any:
    """The JSON of an answer; the text of a text/plain one (metrics); None when empty."""
    if not response.content:
        return None
    if response.headers.get("content-type", "").startswith("text/"):
        return response.text
    return response.json()
