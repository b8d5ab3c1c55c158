/** Agents, conversations, tool calls and approvals. */
import { ConflictError } from "./errors.js";
import { follow, parseJson, type FollowOptions } from "./follow.js";
import { sleep } from "./http.js";
import { path, scope, scopedPath } from "./refs.js";
import { Consumer, Resource } from "./resources.js";
import type {
  Agent, AgentMessage, AgentSpec, Approval, ApprovalState, CallLocation, Conversation, ConversationEvent, ConversationSpec,
  ConversationState, HeartbeatReceipt, Liveness, Message, MessagePage, MessageSpec, OperatorState, SendReceipt,
  ToolCall, ToolCallSpec, ToolResultSpec,
} from "./types.js";

export interface AgentFilter {
  namespace?: string; tenant?: string; capability?: string; liveness?: Liveness; state?: OperatorState; label?: string;
}

export class Agents extends Resource {
  /** Registers an agent; the same registration again (a retry) answers the agent too. */
  register(spec: AgentSpec): Promise<Agent> {
    return this.call("POST", "/v1/agents", { body: spec });
  }
  async list(filter: AgentFilter = {}): Promise<Agent[]> {
    return (await this.call<{ agents: Agent[] }>("GET", "/v1/agents", { query: { ...filter } })).agents;
  }
  get(agent: string): Promise<Agent> {
    return this.call("GET", this.pathOf(agent));
  }
  delete(agent: string): Promise<Agent> {
    return this.call("DELETE", this.pathOf(agent));
  }
  setState(agent: string, state: OperatorState, reason?: string): Promise<Agent> {
    const body = reason === undefined ? { state } : { state, reason };
    return this.call("PUT", `${this.pathOf(agent)}/state`, { body });
  }
  heartbeat(agent: string, status?: string, signal?: AbortSignal): Promise<HeartbeatReceipt> {
    return this.call("POST", `${this.pathOf(agent)}/heartbeat`, { body: status === undefined ? {} : { status }, signal });
  }
  /**
   * Beats every intervalMs in the background until the signal aborts (or stop() is
   * called). A failed beat is reported to onError and the next one tries again.
   */
  startHeartbeat(agent: string, intervalMs: number, options: HeartbeatOptions = {}): Heartbeat {
    return new Heartbeat(this, agent, intervalMs, options);
  }
  /** Sends a message to agent's inbox (give message_id to make a retry safe). */
  send(agent: string, message: AgentMessage): Promise<SendReceipt> {
    return this.call("POST", `${this.pathOf(agent)}/messages`, { body: message });
  }
  /** The agent's inbox: pull, events (SSE), ack, nack, release, lag. */
  inbox(agent: string): Consumer {
    return new Consumer(this.http, this.defaults, `${this.pathOf(agent)}/inbox`);
  }
  private pathOf(agent: string): string {
    return scopedPath("agents", this.defaults, agent);
  }
}

export interface HeartbeatOptions {
  status?: string;
  onBeat?: (receipt: HeartbeatReceipt) => void;
  onError?: (error: unknown) => void;
  signal?: AbortSignal;
}

/** A background heartbeat; stop() ends it. */
export class Heartbeat {
  private readonly controller = new AbortController();
  /** The last answer: tells the agent its operator state (e.g. draining). */
  last: HeartbeatReceipt | undefined;
  readonly done: Promise<void>;

  constructor(agents: Agents, agent: string, intervalMs: number, options: HeartbeatOptions) {
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
    this.done = this.run(agents, agent, intervalMs, options);
  }

  private async run(agents: Agents, agent: string, intervalMs: number, options: HeartbeatOptions): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      try {
        this.last = await agents.heartbeat(agent, options.status, signal);
        options.onBeat?.(this.last);
      } catch (error) {
        if (signal.aborted) break;
        options.onError?.(error);
      }
      await sleep(intervalMs, signal).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}

export interface ConversationFilter {
  namespace?: string; tenant?: string; participant?: string; state?: ConversationState; label?: string;
  active_since?: number;
}

export interface ReplayQuery {
  from_seq?: number; to_seq?: number; since?: number; limit?: number;
}

export class Conversations extends Resource {
  create(spec: ConversationSpec): Promise<Conversation> {
    return this.call("POST", "/v1/conversations", { body: spec });
  }
  async list(filter: ConversationFilter = {}): Promise<Conversation[]> {
    const answer = await this.call<{ conversations: Conversation[] }>("GET", "/v1/conversations", { query: { ...filter } });
    return answer.conversations;
  }
  get(conversation: string): Promise<Conversation> {
    return this.call("GET", this.pathOf(conversation));
  }
  delete(conversation: string): Promise<Conversation> {
    return this.call("DELETE", this.pathOf(conversation));
  }
  transition(conversation: string, to: ConversationState, reason?: string): Promise<Conversation> {
    const body = reason === undefined ? { to } : { to, reason };
    return this.call("POST", `${this.pathOf(conversation)}/transition`, { body });
  }
  /** Appends a message; with a message_id a retry appends nothing and answers the first. */
  append(conversation: string, message: MessageSpec): Promise<Message> {
    return this.call("POST", `${this.pathOf(conversation)}/messages`, { body: message });
  }
  /** One page of the thread, oldest first; next_from_seq is where the next page starts. */
  messages(conversation: string, query: ReplayQuery = {}): Promise<MessagePage> {
    return this.call("GET", `${this.pathOf(conversation)}/messages`, { query: { ...query } });
  }
  /** Every message from from_seq on, page by page. */
  async *replay(conversation: string, query: ReplayQuery = {}): AsyncGenerator<Message> {
    let next: number | null = query.from_seq ?? 1;
    while (next !== null) {
      const page: MessagePage = await this.messages(conversation, { ...query, from_seq: next });
      yield* page.messages;
      next = page.messages.length === 0 ? null : page.next_from_seq;
    }
  }
  /** Follows the conversation live (messages, state changes, deletion), resuming by sequence number. */
  follow(conversation: string, options: FollowOptions & { from_seq?: number } = {}): AsyncGenerator<ConversationEvent> {
    const query = options.from_seq === undefined ? {} : { from_seq: options.from_seq };
    return follow(this.http, `${this.pathOf(conversation)}/stream`, query, conversationEvent, options);
  }
  pathOf(conversation: string): string {
    return scopedPath("conversations", this.defaults, conversation);
  }
}

function conversationEvent(event: { type: string; data: string; id: string }): ConversationEvent | undefined {
  if (event.type === "message") return { type: "message", id: event.id, message: parseJson(event.data) as Message };
  if (event.type === "state" || event.type === "deleted") return { type: event.type, data: parseJson(event.data) };
  return undefined; // a kind this SDK does not know (a newer bus)
}

const MAX_WAIT_MS = 60_000; // the longest one GET of a call waits on the bus
const UNSETTLED = new Set(["pending", "awaiting_approval"]);

export interface CallOptions {
  /** How long to wait for the result (default: the call's timeout_ms, else 60 s). */
  waitMs?: number;
  /** Aborting cancels the call on the bus (and its children) and rejects. */
  signal?: AbortSignal;
}

export class ToolCalls extends Resource {
  /** Places a call (status pending, or awaiting_approval for a gated tool). A retry is recognised. */
  async place(conversation: string, call: ToolCallSpec): Promise<ToolCall> {
    const withId = { ...call, call_id: call.call_id ?? randomId() };
    try {
      return await this.call<ToolCall>("POST", `${scopedPath("conversations", this.defaults, conversation)}/tool-calls`, {
        body: withId,
      });
    } catch (error) {
      // our own earlier attempt went through (the answer was lost): it is the call
      if (error instanceof ConflictError && error.code === "tool_call_exists") {
        const found = await this.get(withId.call_id);
        if (found.tool === withId.tool && found.callee === withId.callee && found.caller === withId.caller) return found;
      }
      throw error;
    }
  }
  /** Posts the result of a call, once. */
  settle(conversation: string, result: ToolResultSpec): Promise<ToolCall> {
    return this.call("POST", `${scopedPath("conversations", this.defaults, conversation)}/tool-results`, { body: result });
  }
  /** The call now, or once it settled if that is within waitMs (at most 60 s). */
  get(callId: string, waitMs?: number, signal?: AbortSignal): Promise<ToolCall> {
    const query = waitMs === undefined ? {} : { wait_ms: Math.min(waitMs, MAX_WAIT_MS) };
    return this.call("GET", path("/v1/tool-calls", ...scope(this.defaults), callId), {
      query, signal, timeoutMs: 35_000 + (waitMs ?? 0),
    });
  }
  /** Which conversation the call is in, and its approval while it is parked. */
  location(callId: string): Promise<CallLocation> {
    return this.call("GET", path("/v1/tool-calls", ...scope(this.defaults), callId, "location"));
  }
  /** Cancels the call and every pending call below it; the ids cancelled. */
  async cancel(callId: string, reason = ""): Promise<string[]> {
    const answer = await this.call<{ cancelled: string[] }>("POST", path("/v1/tool-calls", ...scope(this.defaults), callId, "cancel"), {
      body: { reason },
    });
    return answer.cancelled;
  }
  /**
   * Places a call and waits for it to settle: the settled call (done, failed, timed_out,
   * cancelled, rejected), or as it stands when waitMs ran out. A gated call waits for the
   * approval too. Aborting the signal cancels the call on the bus.
   */
  async callAndWait(conversation: string, call: ToolCallSpec, options: CallOptions = {}): Promise<ToolCall> {
    const placed = await this.place(conversation, call);
    return this.waitFor(placed, options);
  }
  async waitFor(placed: ToolCall, options: CallOptions = {}): Promise<ToolCall> {
    const deadline = Date.now() + (options.waitMs ?? Math.max(placed.deadline - Date.now(), MAX_WAIT_MS));
    let current = placed;
    const onAbort = (): void => void this.cancel(placed.call_id, "cancelled by the caller").catch(() => undefined);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      while (UNSETTLED.has(current.status)) {
        const left = deadline - Date.now();
        if (left <= 0) return current;
        current = await this.get(placed.call_id, Math.min(left, MAX_WAIT_MS), options.signal);
      }
      return current;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }
}

export interface ApprovalFilter {
  state?: ApprovalState; tool?: string; agent?: string;
}

export class Approvals extends Resource {
  async list(filter: ApprovalFilter = {}): Promise<Approval[]> {
    const answer = await this.call<{ approvals: Approval[] }>("GET", path("/v1/approvals", ...scope(this.defaults)), {
      query: { ...filter },
    });
    return answer.approvals;
  }
  get(approvalId: string): Promise<Approval> {
    return this.call("GET", path("/v1/approvals", ...scope(this.defaults), approvalId));
  }
  /** Publishes the parked call or record once; digest: the one you looked at (else digest_mismatch). */
  approve(approvalId: string, digest: string, reason = ""): Promise<Approval> {
    return this.decide(approvalId, "approve", digest, reason);
  }
  reject(approvalId: string, digest: string, reason = ""): Promise<Approval> {
    return this.decide(approvalId, "reject", digest, reason);
  }
  private decide(approvalId: string, verb: string, digest: string, reason: string): Promise<Approval> {
    return this.call("POST", path("/v1/approvals", ...scope(this.defaults), approvalId, verb), { body: { digest, reason } });
  }
}

export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
