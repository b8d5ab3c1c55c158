"""Every error this client raises, in one hierarchy.

    AgentbusError                               (client side: what went wrong here)
    ├── TransportError                          no answer from any URL            yes
    └── APIError                                the bus answered with an error
            InternalError                       internal_error          500
            BadRequest                          bad_request             400
                InvalidJson                     invalid_json            400
                InvalidParameter                invalid_parameter       400
                ReservedHeader                  reserved_header         400
                WebSocketRequired               websocket_required      400
            Unauthenticated                     unauthenticated         401
                InvalidKey                      invalid_key             401
            Forbidden                           forbidden               403
                AdminRequired                   admin_required          403
                NotAParticipant                 not_a_participant       403
                NotCallee                       not_callee              403
                PermissionMissing               permission_missing      403
                ReservedNamespace               reserved_namespace      403
                RuleDenied                      rule_denied             403
                TenantForbidden                 tenant_forbidden        403
            NotFound                            not_found               404
                AgentNotFound                   agent_not_found         404
                ApprovalNotFound                approval_not_found      404
                ConversationNotFound            conversation_not_found  404
                DeadLetterNotFound              dead_letter_not_found   404
                DeliveryNotFound                delivery_not_found      404
                KeyNotFound                     key_not_found           404
                RouteNotFound                   route_not_found         404
                SubjectNotFound                 subject_not_found       404
                SubscriptionNotFound            subscription_not_found  404
                ToolCallNotFound                tool_call_not_found     404
                ToolNotFound                    tool_not_found          404
                TopicNotFound                   topic_not_found         404
                VersionNotFound                 version_not_found       404
            MethodNotAllowed                    method_not_allowed      405
            Conflict                            conflict                409
                AgentDisabled                   agent_disabled          409
                AgentExists                     agent_exists            409
                AlreadyDecided                  already_decided         409
                AlreadyRedriven                 already_redriven        409
                ConversationExists              conversation_exists     409
                ConversationNotOpen             conversation_not_open   409
                DeliveryStale                   delivery_stale          409
                DeliverySuperseded              delivery_superseded     409
                DigestMismatch                  digest_mismatch         409
                IllegalTransition               illegal_transition      409
                IncompatibleSchema              incompatible_schema     409
                SchemaInUse                     schema_in_use           409
                StreamCancelled                 stream_cancelled        409
                StreamEnded                     stream_ended            409
                SubscriptionExists              subscription_exists     409
                ToolCallExists                  tool_call_exists        409
                ToolCallFinished                tool_call_finished      409
                    ToolCallCancelled           tool_call_cancelled     409
                    ToolCallTimedOut            tool_call_timed_out     409
                    ToolResultExists            tool_result_exists      409
                TopicExists                     topic_exists            409
            TooLarge                            too_large               413
                BatchTooLarge                   batch_too_large         413
                PayloadTooLarge                 payload_too_large       413
                RequestTooLarge                 request_too_large       413
                RulesTooLarge                   rules_too_large         413
                SchemaTooLarge                  schema_too_large        413
            UnsupportedMediaType                unsupported_media_type  415
            Unprocessable                       invalid_request         422
                InvalidEnvelope                 invalid_envelope        422
                InvalidRule                     invalid_rule            422
                InvalidSchema                   invalid_schema          422
                SchemaViolation                 schema_violation        422
            KafkaRejected                       kafka_rejected          422
            QuotaExceeded                       quota_exceeded          429  yes
                TooManyStreams                  too_many_streams        429  yes
            Unavailable                         unavailable             503  yes
                KafkaUnavailable                kafka_unavailable       503  yes
                NotReady                        not_ready               503  yes
                OwnerMoved                      owner_moved             503  yes
                TooManySubscribers              too_many_subscribers    503  yes
            GatewayTimeout                      timeout                 504  yes

Each APIError carries the bus's stable `code`, the HTTP `status`, the `message`, the
`details` the bus sent, and a class-level `retriable` flag: the client retries exactly
the retriable ones (honouring Retry-After), so a caller that sees one has waited the
whole retry budget out. A code this version does not know maps to the class of its HTTP
status (a newer bus may send new codes), keeping the code it came with.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "APIError",
    "AdminRequired",
    "AgentDisabled",
    "AgentExists",
    "AgentNotFound",
    "AgentbusError",
    "AlreadyDecided",
    "AlreadyRedriven",
    "ApprovalNotFound",
    "BadRequest",
    "BatchTooLarge",
    "Conflict",
    "ConversationExists",
    "ConversationNotFound",
    "ConversationNotOpen",
    "DeadLetterNotFound",
    "DeliveryNotFound",
    "DeliveryStale",
    "DeliverySuperseded",
    "DigestMismatch",
    "Forbidden",
    "GatewayTimeout",
    "IllegalTransition",
    "IncompatibleSchema",
    "InternalError",
    "InvalidEnvelope",
    "InvalidJson",
    "InvalidKey",
    "InvalidParameter",
    "InvalidRule",
    "InvalidSchema",
    "KafkaRejected",
    "KafkaUnavailable",
    "KeyNotFound",
    "MethodNotAllowed",
    "NotAParticipant",
    "NotCallee",
    "NotFound",
    "NotReady",
    "OwnerMoved",
    "PayloadTooLarge",
    "PermissionMissing",
    "QuotaExceeded",
    "RequestTooLarge",
    "ReservedHeader",
    "ReservedNamespace",
    "RouteNotFound",
    "RuleDenied",
    "RulesTooLarge",
    "SchemaInUse",
    "SchemaTooLarge",
    "SchemaViolation",
    "StreamCancelled",
    "StreamEnded",
    "SubjectNotFound",
    "SubscriptionExists",
    "SubscriptionNotFound",
    "TenantForbidden",
    "TooLarge",
    "TooManyStreams",
    "TooManySubscribers",
    "ToolCallCancelled",
    "ToolCallExists",
    "ToolCallFinished",
    "ToolCallNotFound",
    "ToolCallTimedOut",
    "ToolNotFound",
    "ToolResultExists",
    "TopicExists",
    "TopicNotFound",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "Unprocessable",
    "UnsupportedMediaType",
    "VersionNotFound",
    "WebSocketRequired",
    "error_class_for",
    "error_from_answer",
]


class AgentbusError(Exception):
    """Base of everything this client raises on purpose."""

    retriable: ClassVar[bool] = False


class TransportError(AgentbusError):
    """No answer: every URL refused the connection, or it broke or timed out (after retries)."""

    retriable = True


class APIError(AgentbusError):
    """The bus answered with an error body {"error": {"code", "message", "details"}}."""

    code: ClassVar[str] = "unknown"
    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after = retry_after  # seconds, from Retry-After (429, 503)
        if code is not None and code != type(self).code:
            self.code = code  # type: ignore[misc]  # an unknown code keeps its own name
        if status is not None and status != type(self).status:
            self.status = status  # type: ignore[misc]

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class InternalError(APIError):
    """A bug in the bus (500); the worker's log has the trace."""

    code = "internal_error"
    status = 500


class BadRequest(APIError):
    code = "bad_request"
    status = 400


class InvalidJson(BadRequest):
    code = "invalid_json"


class InvalidParameter(BadRequest):
    """A query parameter or request header the bus cannot read (e.g. from=, Last-Event-ID)."""

    code = "invalid_parameter"


class ReservedHeader(BadRequest):
    code = "reserved_header"


class WebSocketRequired(BadRequest):
    code = "websocket_required"


class Unauthenticated(APIError):
    """No 'Authorization: Bearer <key>' header."""

    code = "unauthenticated"
    status = 401


class InvalidKey(Unauthenticated):
    """A key the bus does not know, or one that was rotated or revoked."""

    code = "invalid_key"


class Forbidden(APIError):
    code = "forbidden"
    status = 403


class AdminRequired(Forbidden):
    code = "admin_required"


class NotAParticipant(Forbidden):
    code = "not_a_participant"


class NotCallee(Forbidden):
    """A tool result names a sender that is not the call's callee; details.callee names it."""

    code = "not_callee"


class PermissionMissing(Forbidden):
    """The key's grants lack the action; details.permission names it (read, write, manage)."""

    code = "permission_missing"


class ReservedNamespace(Forbidden):
    code = "reserved_namespace"


class RuleDenied(Forbidden):
    """A tenant's publish rule refused a record; nothing of the request was produced."""

    code = "rule_denied"


class TenantForbidden(Forbidden):
    """The key belongs to another namespace or tenant."""

    code = "tenant_forbidden"


class NotFound(APIError):
    code = "not_found"
    status = 404


class AgentNotFound(NotFound):
    code = "agent_not_found"


class ApprovalNotFound(NotFound):
    code = "approval_not_found"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class DeadLetterNotFound(NotFound):
    code = "dead_letter_not_found"


class DeliveryNotFound(NotFound):
    """A delivery id this subscription never issued (malformed, or another subscription's)."""

    code = "delivery_not_found"


class KeyNotFound(NotFound):
    code = "key_not_found"


class RouteNotFound(NotFound):
    code = "route_not_found"


class SubjectNotFound(NotFound):
    code = "subject_not_found"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


class ToolCallNotFound(NotFound):
    code = "tool_call_not_found"


class ToolNotFound(NotFound):
    """The callee declares no tool of that name."""

    code = "tool_not_found"


class TopicNotFound(NotFound):
    code = "topic_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class MethodNotAllowed(APIError):
    code = "method_not_allowed"
    status = 405


class Conflict(APIError):
    code = "conflict"
    status = 409


class AgentDisabled(Conflict):
    """An operator disabled the agent: it takes no messages until it is enabled again."""

    code = "agent_disabled"


class AgentExists(Conflict):
    code = "agent_exists"


class AlreadyDecided(Conflict):
    """details.decision shows the first decision."""

    code = "already_decided"


class AlreadyRedriven(Conflict):
    code = "already_redriven"


class ConversationExists(Conflict):
    code = "conversation_exists"


class ConversationNotOpen(Conflict):
    """Paused, closed and archived conversations take no messages."""

    code = "conversation_not_open"


class DeliveryStale(Conflict):
    """The delivery predates a seek of the subscription; its record is no longer pending."""

    code = "delivery_stale"


class DeliverySuperseded(Conflict):
    """The record was delivered again (to this or another client) after this delivery."""

    code = "delivery_superseded"


class DigestMismatch(Conflict):
    """The approver quoted another payload's digest: what they saw is not what would be published."""

    code = "digest_mismatch"


class IllegalTransition(Conflict):
    """details.allowed lists the states the conversation (or agent) may move to."""

    code = "illegal_transition"


class IncompatibleSchema(Conflict):
    code = "incompatible_schema"


class SchemaInUse(Conflict):
    code = "schema_in_use"


class StreamCancelled(Conflict):
    """A consumer cancelled the stream: the producer should stop."""

    code = "stream_cancelled"


class StreamEnded(Conflict):
    code = "stream_ended"


class SubscriptionExists(Conflict):
    code = "subscription_exists"


class ToolCallExists(Conflict):
    code = "tool_call_exists"


class ToolCallFinished(Conflict):
    """The call is settled already; details.status and details.result say how."""

    code = "tool_call_finished"


class ToolCallCancelled(ToolCallFinished):
    code = "tool_call_cancelled"


class ToolCallTimedOut(ToolCallFinished):
    code = "tool_call_timed_out"


class ToolResultExists(ToolCallFinished):
    code = "tool_result_exists"


class TopicExists(Conflict):
    code = "topic_exists"


class TooLarge(APIError):
    code = "too_large"
    status = 413


class BatchTooLarge(TooLarge):
    code = "batch_too_large"


class PayloadTooLarge(TooLarge):
    code = "payload_too_large"


class RequestTooLarge(TooLarge):
    code = "request_too_large"


class RulesTooLarge(TooLarge):
    code = "rules_too_large"


class SchemaTooLarge(TooLarge):
    code = "schema_too_large"


class UnsupportedMediaType(APIError):
    code = "unsupported_media_type"
    status = 415


class Unprocessable(APIError):
    code = "invalid_request"
    status = 422


class InvalidEnvelope(Unprocessable):
    code = "invalid_envelope"


class InvalidRule(Unprocessable):
    """A publish rule cannot be stored; details name the rule's index and the reason."""

    code = "invalid_rule"


class InvalidSchema(Unprocessable):
    """A submitted JSON Schema is not a valid draft 2020-12 schema (or uses a remote $ref)."""

    code = "invalid_schema"


class SchemaViolation(Unprocessable):
    """A payload published to a bound topic breaks the topic's schema."""

    code = "schema_violation"


class KafkaRejected(APIError):
    """Kafka refused a request for a reason the caller can fix (e.g. replication factor)."""

    code = "kafka_rejected"
    status = 422


class QuotaExceeded(APIError):
    """Over a fleet-wide rate quota; retry after retry_after seconds (sent as Retry-After)."""

    code = "quota_exceeded"
    status = 429
    retriable = True


class TooManyStreams(QuotaExceeded):
    """The key holds its maximum of event streams on that worker; retry after retry_after."""

    code = "too_many_streams"


class Unavailable(APIError):
    code = "unavailable"
    status = 503
    retriable = True


class KafkaUnavailable(Unavailable):
    code = "kafka_unavailable"


class NotReady(Unavailable):
    code = "not_ready"


class OwnerMoved(Unavailable):
    """The worker that runs a subscription changed (a rebalance); retry, any worker will do."""

    code = "owner_moved"


class TooManySubscribers(Unavailable):
    code = "too_many_subscribers"


class GatewayTimeout(APIError):
    code = "timeout"
    status = 504
    retriable = True


def _all_api_errors() -> list[type[APIError]]:
    found: list[type[APIError]] = []
    pending: list[type[APIError]] = [APIError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_CODE: dict[str, type[APIError]] = {cls.code: cls for cls in _all_api_errors() if cls is not APIError}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: TooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: QuotaExceeded,
    500: InternalError,
    502: Unavailable,  # a proxy in front of the fleet lost its worker
    503: Unavailable,
    504: GatewayTimeout,
}


def error_class_for(code: str | None, status: int) -> type[APIError]:
    """The class of an error answer: by its code, else by its HTTP status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    return _BY_STATUS.get(status, APIError)


def error_from_answer(status: int, body: Any, retry_after: float | None = None) -> APIError:
    """The typed error for an error answer (its JSON body, or whatever text came instead)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message, details = error.get("code"), str(error.get("message", "")), error.get("details")
    else:
        code, message, details = None, f"HTTP {status}", body
    cls = error_class_for(code if isinstance(code, str) else None, status)
    return cls(
        message,
        code=code if isinstance(code, str) else None,
        status=status,
        details=details,
        retry_after=retry_after,
    )
