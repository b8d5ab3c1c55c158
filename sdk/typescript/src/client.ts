/** The client: one object for the whole bus, its resources as properties. */
import { Agents, Approvals, Conversations, ToolCalls } from "./agents.js";
import { follow, parseJson, type FollowOptions } from "./follow.js";
import { HttpClient, type ClientOptions } from "./http.js";
import { scopedPath } from "./refs.js";
import { Audit, Keys, Quotas, Rules, Schemas, Subscriptions, Topics } from "./resources.js";
import { AgentRuntime, type RuntimeOptions } from "./runtime.js";
import { Streams } from "./streams.js";
import { loadTracing } from "./tracing.js";
import { errorFromResponse } from "./errors.js";
import type { DeliveredRecord, Envelope, Fleet, Health, PublishResult, TopicEvent, WatchSnapshot, WhoAmI } from "./types.js";

export interface SubscribeOptions extends FollowOptions {
  /** Where to start without a lastEventId: "earliest", "latest" (default) or unix ms. */
  from?: "earliest" | "latest" | number;
}

export interface WatchOptions {
  /** How often the worker reads the paths again, 1000 to 60000 ms (the bus's default: 2000). */
  intervalMs?: number;
  /** Stop watching (the iterator ends). */
  signal?: AbortSignal;
}

export class Agentbus {
  readonly http: HttpClient;
  readonly topics: Topics;
  readonly subscriptions: Subscriptions;
  readonly schemas: Schemas;
  readonly keys: Keys;
  readonly quotas: Quotas;
  readonly rules: Rules;
  readonly audit: Audit;
  readonly agents: Agents;
  readonly conversations: Conversations;
  readonly toolCalls: ToolCalls;
  readonly streams: Streams;
  readonly approvals: Approvals;

  constructor(readonly options: ClientOptions) {
    this.http = new HttpClient(options);
    const defaults = { namespace: options.namespace, tenant: options.tenant };
    this.topics = new Topics(this.http, defaults);
    this.subscriptions = new Subscriptions(this.http, defaults);
    this.schemas = new Schemas(this.http, defaults);
    this.keys = new Keys(this.http, defaults);
    this.quotas = new Quotas(this.http, defaults);
    this.rules = new Rules(this.http, defaults);
    this.audit = new Audit(this.http, defaults);
    this.agents = new Agents(this.http, defaults);
    this.conversations = new Conversations(this.http, defaults);
    this.toolCalls = new ToolCalls(this.http, defaults);
    this.streams = new Streams(this.http, defaults);
    this.approvals = new Approvals(this.http, defaults);
  }

  /** A client with W3C trace propagation on when @opentelemetry/api is installed. */
  static async create(options: ClientOptions): Promise<Agentbus> {
    await loadTracing();
    return new Agentbus(options);
  }

  /** Publishes one record (give message_id to make a retry idempotent). */
  async publish(envelope: Envelope): Promise<PublishResult> {
    return (await this.http.request<PublishResult>("POST", "/v1/publish", { body: envelope })).body;
  }

  /** Publishes records in one request, all or nothing. */
  async publishBatch(records: readonly Envelope[]): Promise<PublishResult[]> {
    const answer = await this.http.request<{ results: PublishResult[] }>("POST", "/v1/publish/batch", { body: { records } });
    return answer.body.results;
  }

  /**
   * A topic's records as they are published. Resumes after a dropped connection with
   * the last event id (on any worker), so nothing is lost or repeated; pass a saved
   * lastEventId to resume a later run. Ends when options.signal aborts.
   */
  subscribe(topic: string, options: SubscribeOptions = {}): AsyncGenerator<TopicEvent> {
    const query = options.from === undefined || options.lastEventId ? {} : { from: options.from };
    return follow(this.http, scopedPath("subscribe", { ...this.options }, topic), query, topicEvent, options);
  }

  /** An agent runtime (register, heartbeat, inbox handlers, tools); start() it. */
  agent(options: RuntimeOptions): AgentRuntime {
    return new AgentRuntime(this.agents, this.toolCalls, options);
  }

  /**
   * Watches GETs of this API (e.g. "/v1/agents/demo/acme/solver/inbox/lag"; at most 20):
   * a snapshot of every answer now and whenever one of them changed. Each result has its
   * own status (an error answer is a result, not a throw). A dropped connection is
   * reopened, and its first snapshot is the state then. Ends when options.signal aborts.
   */
  watch(paths: readonly string[], options: WatchOptions = {}): AsyncGenerator<WatchSnapshot> {
    const query = { path: paths, interval_ms: options.intervalMs };
    return follow(this.http, "/v1/watch", query, watchSnapshot, { signal: options.signal });
  }

  /** The caller's key: admin or not, its namespace/tenant and grants. */
  async whoami(): Promise<WhoAmI> {
    return (await this.http.request<WhoAmI>("GET", "/v1/whoami")).body;
  }
  /** Every worker of the fleet (admin): up, ready, owned state partitions, counters. */
  async workers(): Promise<Fleet> {
    return (await this.http.request<Fleet>("GET", "/v1/workers")).body;
  }

  /** /healthz (as /readyz, for existing checks): throws UnavailableError while the worker is not ready. */
  async health(): Promise<Health> {
    return (await this.http.request<Health>("GET", "/healthz")).body;
  }
  /** /livez: the worker process is up (200 even while it is still starting: see ready). */
  async live(): Promise<Health> {
    return (await this.http.request<Health>("GET", "/livez")).body;
  }
  /**
   * /readyz: whether the worker can answer correctly now. Its 503 is not thrown: the
   * Health comes back with ready false, from one attempt (a probe is not retried).
   */
  async ready(): Promise<Health> {
    const answer = await this.http.request<unknown>("GET", "/readyz", { answerStatuses: [503] });
    if (answer.status !== 503 || isHealth(answer.body)) return answer.body as Health;
    // a 503 that is no Health (a proxy's page): the error it is
    const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
    throw errorFromResponse(answer.status, text, answer.headers.get("retry-after"));
  }
  async metrics(): Promise<string> {
    return (await this.http.request<string>("GET", "/metrics")).body;
  }
  async openapi(): Promise<Record<string, unknown>> {
    const answer = await this.http.request<Record<string, unknown> | string>("GET", "/openapi.json");
    return typeof answer.body === "string" ? (JSON.parse(answer.body) as Record<string, unknown>) : answer.body;
  }
}

function watchSnapshot(event: { type: string; data: string }): WatchSnapshot | undefined {
  return event.type === "snapshot" ? (parseJson(event.data) as WatchSnapshot) : undefined;
}

function isHealth(body: unknown): body is Health {
  return typeof body === "object" && body !== null && typeof (body as Health).ready === "boolean";
}

function topicEvent(event: { type: string; data: string; id: string }): TopicEvent | undefined {
  return event.type === "record" ? { id: event.id, record: parseJson(event.data) as DeliveredRecord } : undefined;
}
