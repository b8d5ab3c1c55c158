"""Every error the bus reports, in one hierarchy.

    BusError                       code               status  retriable
    ├── BadRequest                 bad_request        400
    │   ├── InvalidJson            invalid_json       400
    │   ├── InvalidParameter       invalid_parameter  400
    │   └── ReservedHeader         reserved_header    400
    ├── Unprocessable              invalid_request    422
    │   ├── InvalidEnvelope        invalid_envelope   422
    │   ├── InvalidSchema          invalid_schema     422
    │   ├── SchemaViolation        schema_violation   422
    │   └── InvalidRule            invalid_rule       422
    ├── NotFound                   not_found          404
    │   ├── RouteNotFound          route_not_found    404
    │   ├── TopicNotFound          topic_not_found    404
    │   ├── KeyNotFound            key_not_found      404
    │   ├── SubjectNotFound        subject_not_found  404
    │   ├── VersionNotFound        version_not_found  404
    │   ├── SubscriptionNotFound   subscription_not_found 404
    │   ├── DeliveryNotFound       delivery_not_found 404
    │   ├── DeadLetterNotFound     dead_letter_not_found 404
    │   ├── ConversationNotFound   conversation_not_found 404
    │   └── AgentNotFound          agent_not_found    404
    ├── Unauthenticated            unauthenticated    401
    │   └── InvalidKey             invalid_key        401
    ├── Forbidden                  forbidden          403
    │   ├── ReservedNamespace      reserved_namespace 403
    │   ├── AdminRequired          admin_required     403
    │   ├── TenantForbidden        tenant_forbidden   403
    │   ├── PermissionMissing      permission_missing 403
    │   ├── RuleDenied             rule_denied        403
    │   ├── NotAParticipant        not_a_participant  403
    │   └── NotCallee              not_callee         403
    ├── MethodNotAllowed           method_not_allowed 405
    ├── Conflict                   conflict           409
    │   ├── TopicExists            topic_exists       409
    │   ├── IncompatibleSchema     incompatible_schema 409
    │   ├── SchemaInUse            schema_in_use      409
    │   ├── SubscriptionExists     subscription_exists 409
    │   ├── DeliverySuperseded     delivery_superseded 409
    │   ├── DeliveryStale          delivery_stale     409
    │   ├── AlreadyRedriven        already_redriven   409
    │   ├── ConversationExists     conversation_exists 409
    │   ├── IllegalTransition      illegal_transition 409
    │   ├── ConversationNotOpen    conversation_not_open 409
    │   ├── AgentExists            agent_exists       409
    │   └── AgentDisabled          agent_disabled     409
    ├── TooLarge                   too_large          413
    │   ├── PayloadTooLarge        payload_too_large  413
    │   ├── BatchTooLarge          batch_too_large    413
    │   ├── RequestTooLarge        request_too_large  413
    │   ├── SchemaTooLarge         schema_too_large   413
    │   └── RulesTooLarge          rules_too_large    413
    ├── UnsupportedMediaType       unsupported_media_type 415
    ├── QuotaExceeded              quota_exceeded     429     yes (after Retry-After)
    │   └── TooManyStreams         too_many_streams   429     yes (after Retry-After)
    ├── KafkaRejected              kafka_rejected     422
    ├── Unavailable                unavailable        503     yes
    │   ├── KafkaUnavailable       kafka_unavailable  503     yes
    │   ├── NotReady               not_ready          503     yes
    │   ├── OwnerMoved             owner_moved        503     yes
    │   └── TooManySubscribers     too_many_subscribers 503   yes
    └── Timeout                    timeout            504     yes

Codes are stable: clients switch on them, so a code is never renamed. Every error
renders as {"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AdminRequired",
    "AgentDisabled",
    "AgentExists",
    "AgentNotFound",
    "AlreadyDecided",
    "ApprovalNotFound",
    "BadRequest",
    "BatchTooLarge",
    "BusError",
    "ConversationExists",
    "ConversationNotFound",
    "ConversationNotOpen",
    "DeadLetterNotFound",
    "DeliveryNotFound",
    "DeliveryStale",
    "DeliverySuperseded",
    "DigestMismatch",
    "IllegalTransition",
    "IncompatibleSchema",
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
    "Timeout",
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
    "Unauthenticated",
    "Unavailable",
    "Unprocessable",
    "UnsupportedMediaType",
    "VersionNotFound",
    "WebSocketRequired",
    "all_error_classes",
    "from_answer",
]


class BusError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retriable: ClassVar[bool] = False

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(BusError):
    code = "bad_request"
    status = 400


class InvalidJson(BadRequest):
    code = "invalid_json"


class WebSocketRequired(BadRequest):
    code = "websocket_required"


class InvalidParameter(BadRequest):
    """A query parameter or request header the bus cannot read (e.g. from=, Last-Event-ID)."""

    code = "invalid_parameter"


class ReservedHeader(BadRequest):
    code = "reserved_header"


class Unprocessable(BusError):
    code = "invalid_request"
    status = 422


class InvalidEnvelope(Unprocessable):
    code = "invalid_envelope"


class InvalidSchema(Unprocessable):
    """A submitted JSON Schema is not a valid draft 2020-12 schema (or uses a remote $ref)."""

    code = "invalid_schema"


class SchemaViolation(Unprocessable):
    """A payload published to a bound topic breaks the topic's schema."""

    code = "schema_violation"


class InvalidRule(Unprocessable):
    """A publish rule cannot be stored; details name the rule's index and the reason."""

    code = "invalid_rule"


class Unauthenticated(BusError):
    """No 'Authorization: Bearer <key>' header."""

    code = "unauthenticated"
    status = 401


class InvalidKey(Unauthenticated):
    """A key the bus does not know, or one that was rotated or revoked."""

    code = "invalid_key"


class Forbidden(BusError):
    code = "forbidden"
    status = 403


class AdminRequired(Forbidden):
    code = "admin_required"


class TenantForbidden(Forbidden):
    """The key belongs to another namespace or tenant."""

    code = "tenant_forbidden"


class PermissionMissing(Forbidden):
    """The key's grants lack the action; details.permission names it (read, write, manage)."""

    code = "permission_missing"


class RuleDenied(Forbidden):
    """A tenant's publish rule refused a record; nothing of the request was produced."""

    code = "rule_denied"


class ReservedNamespace(Forbidden):
    code = "reserved_namespace"


class NotAParticipant(Forbidden):
    code = "not_a_participant"


class NotCallee(Forbidden):
    """A tool result names a sender that is not the call's callee; details.callee names it."""

    code = "not_callee"


class NotFound(BusError):
    code = "not_found"
    status = 404


class RouteNotFound(NotFound):
    code = "route_not_found"


class TopicNotFound(NotFound):
    code = "topic_not_found"


class KeyNotFound(NotFound):
    code = "key_not_found"


class SubjectNotFound(NotFound):
    code = "subject_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


class DeliveryNotFound(NotFound):
    """A delivery id this subscription never issued (malformed, or another subscription's)."""

    code = "delivery_not_found"


class DeadLetterNotFound(NotFound):
    code = "dead_letter_not_found"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class AgentNotFound(NotFound):
    code = "agent_not_found"


class ToolNotFound(NotFound):
    """The callee declares no tool of that name."""

    code = "tool_not_found"


class ToolCallNotFound(NotFound):
    code = "tool_call_not_found"


class ApprovalNotFound(NotFound):
    code = "approval_not_found"


class MethodNotAllowed(BusError):
    code = "method_not_allowed"
    status = 405


class Conflict(BusError):
    code = "conflict"
    status = 409


class TopicExists(Conflict):
    code = "topic_exists"


class IncompatibleSchema(Conflict):
    code = "incompatible_schema"


class SchemaInUse(Conflict):
    code = "schema_in_use"


class SubscriptionExists(Conflict):
    code = "subscription_exists"


class DeliverySuperseded(Conflict):
    """The record was delivered again (to this or another client) after this delivery."""

    code = "delivery_superseded"


class DeliveryStale(Conflict):
    """The delivery predates a seek of the subscription; its record is no longer pending."""

    code = "delivery_stale"


class AlreadyRedriven(Conflict):
    code = "already_redriven"


class ConversationExists(Conflict):
    code = "conversation_exists"


class IllegalTransition(Conflict):
    """details.allowed lists the states the conversation (or agent) may move to."""

    code = "illegal_transition"


class ConversationNotOpen(Conflict):
    """Paused, closed and archived conversations take no messages."""

    code = "conversation_not_open"


class AgentExists(Conflict):
    code = "agent_exists"


class AgentDisabled(Conflict):
    """An operator disabled the agent: it takes no messages until it is enabled again."""

    code = "agent_disabled"


class ToolCallExists(Conflict):
    code = "tool_call_exists"


class ToolCallFinished(Conflict):
    """The call is settled already; details.status and details.result say how."""

    code = "tool_call_finished"


class ToolResultExists(ToolCallFinished):
    code = "tool_result_exists"


class ToolCallCancelled(ToolCallFinished):
    code = "tool_call_cancelled"


class ToolCallTimedOut(ToolCallFinished):
    code = "tool_call_timed_out"


class StreamEnded(Conflict):
    code = "stream_ended"


class StreamCancelled(Conflict):
    """A consumer cancelled the stream: the producer should stop."""

    code = "stream_cancelled"


class AlreadyDecided(Conflict):
    """details.decision shows the first decision."""

    code = "already_decided"


class DigestMismatch(Conflict):
    """The approver quoted another payload's digest: what they saw is not what would be published."""

    code = "digest_mismatch"


class TooLarge(BusError):
    code = "too_large"
    status = 413


class PayloadTooLarge(TooLarge):
    code = "payload_too_large"


class BatchTooLarge(TooLarge):
    code = "batch_too_large"


class RequestTooLarge(TooLarge):
    code = "request_too_large"


class SchemaTooLarge(TooLarge):
    code = "schema_too_large"


class RulesTooLarge(TooLarge):
    code = "rules_too_large"


class UnsupportedMediaType(BusError):
    code = "unsupported_media_type"
    status = 415


class KafkaRejected(BusError):
    """Kafka refused a request for a reason the caller can fix (e.g. replication factor)."""

    code = "kafka_rejected"
    status = 422


class QuotaExceeded(BusError):
    """Over a fleet-wide rate quota; retry after retry_after seconds (sent as Retry-After)."""

    code = "quota_exceeded"
    status = 429
    retriable = True

    def __init__(self, message: str, details: Any = None, retry_after: int = 1) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class TooManyStreams(QuotaExceeded):
    """One API key holds its maximum of event streams on this worker."""

    code = "too_many_streams"


class Unavailable(BusError):
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


class Timeout(BusError):
    code = "timeout"
    status = 504
    retriable = True


def all_error_classes() -> list[type[BusError]]:
    """Every concrete error class, for docs and the OpenAPI document."""
    found: list[type[BusError]] = []
    pending: list[type[BusError]] = [BusError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def from_answer(status: int, body: Any) -> BusError:
    """The error another worker of the fleet answered, as the same bus error (code, message,
    details); an answer that is no bus error means that worker could not answer: retry."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        found = {cls.code: cls for cls in all_error_classes()}.get(str(error.get("code")))
        if found is not None and found.status == status:
            return found(str(error.get("message", "")), error.get("details"))
    return OwnerMoved("Another worker could not answer; retry", {"status": status})
