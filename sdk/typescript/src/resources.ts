/** The bus's resources as methods: topics, subscriptions, schemas, keys, quotas, rules, audit. */
import { follow, parseJson, type FollowOptions } from "./follow.js";
import type { HttpClient } from "./http.js";
import { path, scope, scopedPath, type Scope } from "./refs.js";
import type {
  ApiKey, ApiKeyWithSecret, AuditPage, CompatibilityMode, CompatibilityReport, DeadLetter, Delivery, KeySpec,
  LagReport, PullOptions, Quota, Rule, RuleSet, SchemaBinding, SchemaVersion, SeekTarget, SubjectSummary,
  Subscription, SubscriptionSpec, TenantQuota, Topic, TopicSpec,
} from "./types.js";

/** What every resource needs: the HTTP client and the default namespace/tenant. */
export class Resource {
  constructor(protected readonly http: HttpClient, protected readonly defaults: Partial<Scope>) {}

  protected async call<T>(method: string, p: string, options: Parameters<HttpClient["request"]>[2] = {}): Promise<T> {
    return (await this.http.request<T>(method, p, options)).body;
  }
}

export class Topics extends Resource {
  create(spec: TopicSpec): Promise<Topic> {
    return this.call("POST", "/v1/topics", { body: spec });
  }
  async list(filter: Partial<Scope> = {}): Promise<Topic[]> {
    return (await this.call<{ topics: Topic[] }>("GET", "/v1/topics", { query: { ...filter } })).topics;
  }
  get(topic: string): Promise<Topic> {
    return this.call("GET", scopedPath("topics", this.defaults, topic));
  }
  delete(topic: string): Promise<Topic> {
    return this.call("DELETE", scopedPath("topics", this.defaults, topic));
  }
  bindSchema(topic: string, binding: SchemaBinding): Promise<Topic> {
    return this.call("PUT", scopedPath("topics", this.defaults, topic, "schema"), { body: binding });
  }
  unbindSchema(topic: string): Promise<Topic> {
    return this.call("DELETE", scopedPath("topics", this.defaults, topic, "schema"));
  }
}

export interface Settle {
  ack(deliveryIds: readonly string[]): Promise<{ acked: number }>;
  nack(deliveryIds: readonly string[], options?: NackOptions): Promise<{ nacked: number; dead_lettered: number }>;
  release(session: string): Promise<{ released: number }>;
}

export interface NackOptions {
  action?: "redeliver" | "dead_letter";
  reason?: string;
}

/** Pull, SSE, ack, nack, release and lag: the same for subscriptions and agents' inboxes. */
export class Consumer extends Resource implements Settle {
  constructor(http: HttpClient, defaults: Partial<Scope>, private readonly base: string) {
    super(http, defaults);
  }
  async pull(options: PullOptions = {}, signal?: AbortSignal): Promise<Delivery[]> {
    const timeoutMs = 35_000 + (options.wait_ms ?? 0);
    const answer = await this.call<{ deliveries: Delivery[] }>("POST", `${this.base}/pull`, {
      body: options, signal, timeoutMs,
    });
    return answer.deliveries;
  }
  /** Deliveries as SSE: the connection is a session (what it held unacked goes back when it closes). */
  events(options: Omit<FollowOptions, "lastEventId"> = {}): AsyncGenerator<Delivery> {
    const eventsPath = this.base.endsWith("/inbox") ? this.base : `${this.base}/events`;
    return follow(this.http, eventsPath, {}, (e) => (e.type === "delivery" ? (parseJson(e.data) as Delivery) : undefined), options);
  }
  ack(deliveryIds: readonly string[]): Promise<{ acked: number }> {
    return this.call("POST", `${this.base}/ack`, { body: { delivery_ids: deliveryIds } });
  }
  nack(deliveryIds: readonly string[], options: NackOptions = {}): Promise<{ nacked: number; dead_lettered: number }> {
    return this.call("POST", `${this.base}/nack`, { body: { delivery_ids: deliveryIds, ...options } });
  }
  release(session: string): Promise<{ released: number }> {
    return this.call("POST", `${this.base}/release`, { body: { session } });
  }
  /** How far behind it is: lag, unacked, in flight, the oldest unacked age. */
  lag(): Promise<LagReport> {
    return this.call("GET", `${this.base}/lag`);
  }
}

export class Subscriptions extends Resource {
  create(spec: SubscriptionSpec): Promise<Subscription> {
    return this.call("POST", "/v1/subscriptions", { body: spec });
  }
  async list(filter: Partial<Scope> & { topic?: string } = {}): Promise<Subscription[]> {
    const answer = await this.call<{ subscriptions: Subscription[] }>("GET", "/v1/subscriptions", { query: { ...filter } });
    return answer.subscriptions;
  }
  get(subscription: string): Promise<Subscription> {
    return this.call("GET", this.pathOf(subscription));
  }
  delete(subscription: string): Promise<Subscription> {
    return this.call("DELETE", this.pathOf(subscription));
  }
  /** Pull, events (SSE), ack, nack, release of one subscription. */
  consumer(subscription: string): Consumer {
    return new Consumer(this.http, this.defaults, this.pathOf(subscription));
  }
  lag(subscription: string): Promise<LagReport> {
    return this.call("GET", `${this.pathOf(subscription)}/lag`);
  }
  async seek(subscription: string, target: SeekTarget): Promise<Record<string, number>> {
    const answer = await this.call<{ committed: Record<string, number> }>("POST", `${this.pathOf(subscription)}/seek`, {
      body: target,
    });
    return answer.committed;
  }
  async deadLetters(subscription: string, page: { limit?: number; after?: string } = {}): Promise<DeadLetter[]> {
    const answer = await this.call<{ dead_letters: DeadLetter[] }>("GET", `${this.pathOf(subscription)}/dead-letters`, {
      query: page,
    });
    return answer.dead_letters;
  }
  /** Sends chosen dead letters (or all) back to the topic, once each. */
  redrive(subscription: string, which: { dead_letter_ids: string[] } | { all: true }): Promise<{ redriven: string[]; skipped: string[] }> {
    return this.call("POST", `${this.pathOf(subscription)}/dead-letters/redrive`, { body: which });
  }
  private pathOf(subscription: string): string {
    return scopedPath("subscriptions", this.defaults, subscription);
  }
}

export class Schemas extends Resource {
  async listSubjects(filter: Partial<Scope> = {}): Promise<SubjectSummary[]> {
    return (await this.call<{ subjects: SubjectSummary[] }>("GET", "/v1/schemas", { query: { ...filter } })).subjects;
  }
  register(subject: string, schema: Record<string, unknown> | boolean, description?: string): Promise<SchemaVersion> {
    const body = description === undefined ? { schema } : { schema, description };
    return this.call("POST", this.pathOf(subject, "versions"), { body });
  }
  async versions(subject: string): Promise<SchemaVersion[]> {
    return (await this.call<{ versions: SchemaVersion[] }>("GET", this.pathOf(subject, "versions"))).versions;
  }
  getVersion(subject: string, version: number | "latest"): Promise<SchemaVersion> {
    return this.call("GET", this.pathOf(subject, "versions", String(version)));
  }
  deleteVersion(subject: string, version: number): Promise<SchemaVersion> {
    return this.call("DELETE", this.pathOf(subject, "versions", String(version)));
  }
  /** Whether schema may be registered; the breaking changes when not. */
  checkCompatibility(subject: string, schema: Record<string, unknown> | boolean, mode?: CompatibilityMode): Promise<CompatibilityReport> {
    const body = mode === undefined ? { schema } : { schema, mode };
    return this.call("POST", this.pathOf(subject, "compatibility"), { body });
  }
  getConfig(subject: string): Promise<SubjectSummary> {
    return this.call("GET", this.pathOf(subject, "config"));
  }
  setConfig(subject: string, compatibility: CompatibilityMode): Promise<SubjectSummary> {
    return this.call("PUT", this.pathOf(subject, "config"), { body: { compatibility } });
  }
  private pathOf(subject: string, ...rest: string[]): string {
    return scopedPath("schemas", this.defaults, subject, ...rest);
  }
}

export class Keys extends Resource {
  create(spec: KeySpec): Promise<ApiKeyWithSecret> {
    return this.call("POST", "/v1/keys", { body: spec });
  }
  async list(): Promise<ApiKey[]> {
    return (await this.call<{ keys: ApiKey[] }>("GET", "/v1/keys")).keys;
  }
  get(keyId: string): Promise<ApiKey> {
    return this.call("GET", path("/v1/keys", keyId));
  }
  revoke(keyId: string): Promise<ApiKey> {
    return this.call("DELETE", path("/v1/keys", keyId));
  }
  rotate(keyId: string): Promise<ApiKeyWithSecret> {
    return this.call("POST", path("/v1/keys", keyId, "rotate"));
  }
  setQuota(keyId: string, quota: Quota): Promise<ApiKey> {
    return this.call("PUT", path("/v1/keys", keyId, "quota"), { body: quota });
  }
}

export class Quotas extends Resource {
  get(given: Partial<Scope> = {}): Promise<TenantQuota> {
    return this.call("GET", path("/v1/quotas", ...scope(this.defaults, given)));
  }
  set(quota: Quota, given: Partial<Scope> = {}): Promise<TenantQuota> {
    return this.call("PUT", path("/v1/quotas", ...scope(this.defaults, given)), { body: quota });
  }
}

export class Rules extends Resource {
  get(given: Partial<Scope> = {}): Promise<RuleSet> {
    return this.call("GET", path("/v1/rules", ...scope(this.defaults, given)));
  }
  /** Replaces the tenant's whole rule set. */
  put(rules: Rule[], given: Partial<Scope> = {}): Promise<RuleSet> {
    return this.call("PUT", path("/v1/rules", ...scope(this.defaults, given)), { body: { rules } });
  }
  delete(given: Partial<Scope> = {}): Promise<RuleSet> {
    return this.call("DELETE", path("/v1/rules", ...scope(this.defaults, given)));
  }
}

export interface AuditQuery {
  namespace?: string; tenant?: string; key_id?: string; action?: string; since?: string | number;
  until?: string | number; limit?: number;
  /** "oldest" (default: oldest first from since) or "newest" (newest first back to since). */
  order?: "oldest" | "newest";
}

export class Audit extends Resource {
  search(query: AuditQuery = {}): Promise<AuditPage> {
    return this.call("GET", "/v1/audit", { query: { ...query } });
  }
}
