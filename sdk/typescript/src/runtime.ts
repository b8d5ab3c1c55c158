/**
 * The agent runtime: registers an agent, beats in the background, reads its inbox and
 * runs a handler per message kind (and a function per tool it serves).
 *
 * Delivery is at least once: a message is acked only after its handler returned (and
 * its reply or tool result was accepted); a handler that throws gets the message nacked
 * (redelivered after the inbox's backoff, dead-lettered after max_deliveries). Messages
 * are handled one at a time, in inbox order. stop() ends the pull at once, lets the
 * message in hand finish, gives back what the session held, and stops the heartbeat.
 */
import type { Agents, Heartbeat, ToolCalls } from "./agents.js";
import { ConflictError } from "./errors.js";
import type { AgentSpec, Delivery, ToolCall, ToolError } from "./types.js";

export interface InboxMessage {
  delivery_id: string;
  delivery_count: number;
  message_id: string;
  /** bus.kind: message, tool_call, tool_result, tool_cancel, ... */
  kind: string;
  from: string | null;
  to: string;
  reply_to: string | null;
  correlation_id: string | null;
  conversation: string | null;
  content_type: string;
  /** The sender's own headers (no bus.* ones). */
  headers: Record<string, string>;
  payload: unknown;
  sent_at: number;
}

export interface HandlerContext {
  /** Aborted when the runtime stops. */
  signal: AbortSignal;
}

/** What a message handler returns is sent back (to reply_to, else the sender); undefined sends nothing. */
export type MessageHandler = (message: InboxMessage, context: HandlerContext) => Promise<unknown> | unknown;
/** A tool: gets the arguments (validated by the bus), returns the output; a throw is an error result. */
export type ToolHandler = (args: unknown, call: ToolCall, context: HandlerContext) => Promise<unknown> | unknown;

export interface RuntimeOptions {
  spec: AgentSpec;
  /** A handler per bus.kind ("message", "tool_result", ...). */
  handlers?: Record<string, MessageHandler>;
  /** Tools this agent serves, by name (declare them in spec.capabilities). */
  tools?: Record<string, ToolHandler>;
  /** Pull wait (default 5000 ms) and batch size (default 10). */
  pullWaitMs?: number;
  batch?: number;
  onError?: (error: unknown, message?: InboxMessage) => void;
}

/** A tool handler may throw this to choose the error code of its failed result. */
export class ToolFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export class AgentRuntime {
  readonly agentKey: string;
  private readonly controller = new AbortController();
  private heartbeat: Heartbeat | undefined;
  private loop: Promise<void> | undefined;
  private readonly session = `ts-${Math.random().toString(36).slice(2, 14)}`;

  constructor(private readonly agents: Agents, private readonly toolCalls: ToolCalls, readonly options: RuntimeOptions) {
    const { namespace, tenant, id } = options.spec;
    this.agentKey = `${namespace}/${tenant}/${id}`;
  }

  /** Registers (an earlier identical or different registration is fine), starts beating and serving. */
  async start(): Promise<void> {
    try {
      await this.agents.register(this.options.spec);
    } catch (error) {
      if (!(error instanceof ConflictError && error.code === "agent_exists")) throw error;
    }
    const interval = this.options.spec.heartbeat_interval_ms ?? 10_000;
    this.heartbeat = this.agents.startHeartbeat(this.agentKey, interval, {
      signal: this.controller.signal,
      onError: (error) => this.options.onError?.(error),
    });
    this.loop = this.serve();
  }

  /** Stops cleanly: see the module comment. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.loop;
    await this.heartbeat?.stop();
  }

  private async serve(): Promise<void> {
    const inbox = this.agents.inbox(this.agentKey);
    const signal = this.controller.signal;
    try {
      while (!signal.aborted) {
        let deliveries: Delivery[];
        try {
          deliveries = await inbox.pull({ max_records: this.options.batch ?? 10, wait_ms: this.options.pullWaitMs ?? 5000, session: this.session }, signal);
        } catch (error) {
          if (signal.aborted) break;
          this.options.onError?.(error);
          continue;
        }
        for (const delivery of deliveries) await this.handle(inboxMessage(delivery));
      }
    } finally {
      // what this run held unacked goes back now rather than at its ack deadline
      await inbox.release(this.session).catch(() => undefined);
    }
  }

  /** Runs the handler, sends its answer, then acks; nacks if any of it failed. */
  async handle(message: InboxMessage): Promise<void> {
    const inbox = this.agents.inbox(this.agentKey);
    try {
      if (message.kind === "tool_call" && this.options.tools) {
        await this.serveTool(message.payload as ToolCall);
      } else {
        await this.runHandler(message);
      }
    } catch (error) {
      this.options.onError?.(error, message);
      await inbox.nack([message.delivery_id], { reason: String(error).slice(0, 1000) }).catch((e: unknown) => this.options.onError?.(e, message));
      return;
    }
    await inbox.ack([message.delivery_id]).catch((e: unknown) => this.options.onError?.(e, message));
  }

  private async runHandler(message: InboxMessage): Promise<void> {
    const handler = this.options.handlers?.[message.kind];
    if (!handler) return; // a kind this agent does not handle: acked, not redelivered forever
    const answer = await handler(message, { signal: this.controller.signal });
    const to = message.reply_to ?? message.from;
    if (answer === undefined || to === null) return;
    await this.agents.send(to, {
      from: this.options.spec.id,
      payload: answer as never,
      correlation_id: message.correlation_id ?? message.message_id,
      message_id: await replyId(message.message_id), // a redelivery answers with the same id
    });
  }

  private async serveTool(call: ToolCall): Promise<void> {
    const tool = this.options.tools?.[call.tool];
    let outcome: { status: "ok"; result: unknown } | { status: "error"; error: ToolError };
    if (!tool) {
      outcome = { status: "error", error: { code: "tool_not_served", message: `${this.agentKey} serves no ${call.tool}` } };
    } else {
      try {
        outcome = { status: "ok", result: await tool(call.arguments, call, { signal: this.controller.signal }) };
      } catch (error) {
        const code = error instanceof ToolFailure ? error.code : "tool_failed";
        outcome = { status: "error", error: { code, message: error instanceof Error ? error.message : String(error) } };
      }
    }
    try {
      await this.toolCalls.settle(call.conversation, { call_id: call.call_id, sender: call.callee, ...outcome });
    } catch (error) {
      // settled already (a redelivery of a call we answered, a timeout or a cancel): done with it
      if (!(error instanceof ConflictError)) throw error;
    }
  }
}

export function inboxMessage(d: Delivery): InboxMessage {
  const h = d.headers;
  const own = Object.fromEntries(Object.entries(h).filter(([name]) => !name.startsWith("bus.")));
  return {
    delivery_id: d.delivery_id,
    delivery_count: d.delivery_count,
    message_id: d.message_id ?? h["bus.message_id"] ?? "",
    kind: h["bus.kind"] ?? "message",
    from: h["bus.from"] ?? null,
    to: h["bus.to"] ?? d.key ?? "",
    reply_to: h["bus.reply_to"] ?? null,
    correlation_id: h["bus.correlation_id"] ?? null,
    conversation: h["bus.conversation"] ?? null,
    content_type: d.content_type,
    headers: own,
    payload: d.payload,
    sent_at: d.timestamp,
  };
}

async function replyId(messageId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`reply:${messageId}`));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("").slice(0, 32);
}
