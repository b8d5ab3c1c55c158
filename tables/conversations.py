"""Conversations: the log every conversation's records share, and its view (bus.state.keyed).

The log is the canonical thread: records keyed by conversation, so each conversation is
strictly ordered. The view (one ConversationView per conversation) is rebuilt from it.
"""

from __future__ import annotations

from bus.state.keyed import KeyedState

__all__ = ["approvals", "conversations", "locator"]

conversations = KeyedState(
    "conversations", help="Conversation state, counts and a sequence-to-offset index, by conversation key."
)

# Which conversation a tool call belongs to, by call key: GET /v1/tool-calls/... names
# only the call, and the call's state lives with its conversation.
locator = KeyedState("call-locator", help="The conversation of each tool call, by call view key.")

# Tool calls waiting for a human decision, by approval key (whose id is chosen to hash to
# its conversation's partition, so the conversation's owner decides it).
approvals = KeyedState("approvals", help="Parked tool calls and their decisions, by approval key.")
