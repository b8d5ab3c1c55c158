/**
 * Wire types: the JSON the bus sends and takes, with the field names of /openapi.json
 * (snake_case, as on the wire). Specs list what a caller may send; answers what comes back.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Labels = Record<string, string>;

// -- topics and publish ---------------------------------------------------------------
export interface SchemaBinding { subject: string; version?: number | "latest" }
export interface TopicSpec {
  namespace: string; tenant: string; name: string; partitions?: number | null; replication_factor?: number | null;
  retention_ms?: number | null; retention_bytes?: number | null; description?: string; labels?: Labels;
  schema_binding?: SchemaBinding | null;
}
export interface Topic {
  namespace: string; tenant: string; name: string; kafka_topic: string; partitions: number; replication_factor: number;
  retention_ms: number | null; retention_bytes: number | null; description: string; labels: Labels; created_at: string;
  schema_binding: SchemaBinding | null;
}
export interface Envelope {
  topic: string; payload: unknown; key?: string | null; headers?: Record<string, string>; message_id?: string;
  content_type?: string;
}
export interface PublishResult {
  topic: string; partition: number | null; offset: number | null; message_id: string; timestamp: number;
  status?: "published" | "awaiting_approval"; approval_id?: string | null; approval_digest?: string | null;
}
export interface DeliveredRecord {
  topic: string; partition: number; offset: number; timestamp: number; key: string | null; message_id: string | null;
  content_type: string; headers: Record<string, string>; payload: unknown;
}
/** A record of a topic's SSE stream; id is the resume cursor (Last-Event-ID). */
export interface TopicEvent { id: string; record: DeliveredRecord }

// -- subscriptions ----------------------------------------------------------------------
export interface SubscriptionSpec {
  namespace: string; tenant: string; id: string; topic: string; start?: "earliest" | "latest" | number;
  ack_mode?: "manual" | "auto"; ack_deadline_ms?: number; max_deliveries?: number; redelivery_backoff_ms?: number;
  redelivery_backoff_max_ms?: number; dead_letter_topic?: string | null; filter?: { headers: Labels } | null;
  labels?: Labels; description?: string;
}
export interface Subscription extends Required<Omit<SubscriptionSpec, "filter" | "dead_letter_topic">> {
  start_offsets: Record<string, number>; dead_letter_topic: string; filter: { headers: Labels } | null;
  consumer_group: string; inbox_of: string | null; created_at: string;
}
export interface PullOptions { max_records?: number; wait_ms?: number; session?: string | null }
export interface Delivery extends DeliveredRecord { delivery_id: string; delivery_count: number }
export interface PartitionLag { partition: number; committed: number; high_watermark: number; lag: number; acked_ahead: number }
export interface LagReport {
  subscription: string; partitions: PartitionLag[]; total_lag: number; unacked: number; in_flight: number;
  oldest_unacked_age_ms: number | null; owner?: string;
}
export type SeekTarget =
  | { position: "earliest" | "latest" }
  | { timestamp_ms: number }
  | { offsets: Record<string, number> };
export interface DeadLetter {
  dead_letter_id: string; redriven: boolean; record: DeliveredRecord;
  origin: { topic: string; partition: number; offset: number; subscription: string; reason: string;
    delivery_count: number; first_delivery_at: number; last_delivery_at: number };
}

// -- schemas ----------------------------------------------------------------------------
export type CompatibilityMode =
  | "NONE" | "BACKWARD" | "BACKWARD_TRANSITIVE" | "FORWARD" | "FORWARD_TRANSITIVE" | "FULL" | "FULL_TRANSITIVE";
export interface SchemaVersion {
  namespace: string; tenant: string; subject: string; version: number; schema_id: string;
  schema: Record<string, unknown> | boolean; description: string; created_at: string;
}
export interface SubjectSummary {
  namespace: string; tenant: string; subject: string; compatibility: CompatibilityMode; versions: number[];
  latest: number | null;
}
export interface CompatibilityReport {
  compatible: boolean; mode: CompatibilityMode; compared_with: number[];
  breaking_changes: { pointer: string; change: string; message: string; direction: string; version?: number | null }[];
}

// -- keys, quotas, rules ----------------------------------------------------------------
export interface Grant { topics?: string; actions: ("read" | "write" | "manage")[] }
export interface Quota {
  publish_records_per_s?: number | null; publish_bytes_per_s?: number | null; deliver_records_per_s?: number | null;
  deliver_bytes_per_s?: number | null;
}
export interface KeySpec {
  name: string; role: "admin" | "tenant"; namespace?: string | null; tenant?: string | null; grants?: Grant[];
  labels?: Labels; quota?: Quota | null;
}
export interface ApiKey {
  id: string; name: string; role: string; namespace: string | null; tenant: string | null; grants: Grant[];
  labels: Labels; quota: Quota | null; created_at: string; rotated_at: string | null; revoked_at: string | null;
}
export interface ApiKeyWithSecret extends ApiKey { secret: string }
export interface TenantQuota { namespace: string; tenant: string; quota: Quota }
export type RuleAction =
  | { type: "deny"; reason: string }
  | { type: "tag"; headers: Record<string, string> }
  | { type: "reroute"; topic: string }
  | { type: "require_approval"; reason?: string; ttl_ms?: number };
export interface Rule {
  id: string; action: RuleAction;
  match?: { topics?: string; headers?: Record<string, string>; payload?: { pointer: string; op: string; value?: unknown }[] };
}
export interface RuleSet { namespace: string; tenant: string; rules: Rule[]; updated_at: string | null }

// -- agents -----------------------------------------------------------------------------
export interface Capability {
  name: string; description?: string; input_schema?: Record<string, unknown>;
  output_schema?: Record<string, unknown> | null; requires_approval?: boolean;
}
export interface InboxOptions { ack_deadline_ms?: number; max_deliveries?: number; redelivery_backoff_ms?: number }
export type OperatorState = "enabled" | "draining" | "disabled";
export type Liveness = "unknown" | "alive" | "late" | "dead";
export interface AgentSpec {
  namespace: string; tenant: string; id: string; display_name?: string; description?: string;
  capabilities?: Capability[]; card?: Record<string, unknown> | null; labels?: Labels; heartbeat_interval_ms?: number;
  state?: OperatorState; inbox?: InboxOptions;
}
export interface UsageTotals { input_tokens: number; output_tokens: number; cost: number; reports: number }
export interface Agent {
  namespace: string; tenant: string; id: string; display_name: string; description: string; capabilities: Capability[];
  card: Record<string, unknown>; labels: Labels; heartbeat_interval_ms: number; state: OperatorState;
  inbox: Required<InboxOptions>; created_at: string; updated_at: string; liveness?: Liveness;
  liveness_since?: string | null; last_heartbeat_at?: string | null; status?: string; usage?: UsageTotals;
}
export interface HeartbeatReceipt {
  agent: string; received_at: number; liveness: Liveness; state: OperatorState; heartbeat_interval_ms: number;
}
export interface AgentMessage {
  from?: string | null; payload: unknown; content_type?: string; headers?: Record<string, string>;
  message_id?: string | null; correlation_id?: string | null; reply_to?: string | null;
}
export interface SendReceipt { agent: string; message_id: string; partition: number; offset: number; timestamp: number }

// -- conversations ----------------------------------------------------------------------
export type ConversationState = "open" | "active" | "paused" | "closed" | "archived";
export interface ConversationSpec {
  namespace: string; tenant: string; id?: string; participants?: string[]; title?: string;
  metadata?: Record<string, unknown>; labels?: Labels;
}
export interface Conversation {
  namespace: string; tenant: string; id: string; participants: string[]; title: string; state: ConversationState;
  metadata: Record<string, unknown>; labels: Labels; created_at: string; last_activity_at: string;
  message_count: number; usage?: UsageTotals;
}
export interface MessageSpec {
  sender: string; payload: unknown; content_type?: string; metadata?: Record<string, unknown>; message_id?: string;
}
export interface Message {
  conversation: string; seq: number; kind?: string; message_id: string; sender: string; payload: unknown;
  content_type: string; metadata?: Record<string, unknown>; sent_at: number;
}
export interface MessagePage { messages: Message[]; next_from_seq: number | null }
export type ConversationEvent =
  | { type: "message"; id: string; message: Message }
  | { type: "state"; data: unknown }
  | { type: "deleted"; data: unknown };

// -- tool calls -------------------------------------------------------------------------
export interface Usage { input_tokens?: number; output_tokens?: number; cost?: number; model?: string }
export interface ToolError { code: string; message?: string }
export type ToolCallStatus = "pending" | "awaiting_approval" | "done" | "failed" | "timed_out" | "cancelled" | "rejected";
export interface ToolCallSpec {
  call_id?: string; tool: string; arguments?: unknown; caller: string; callee: string; correlation_id?: string | null;
  reply_to?: string | null; timeout_ms?: number; parent_call_id?: string | null; approval_ttl_ms?: number;
}
export interface ToolResult {
  call_id: string; status: string; result: unknown; error: ToolError | null; usage: Usage | null; by?: string; at: number;
}
export interface ToolCall {
  namespace: string; tenant: string; conversation: string; call_id: string; tool: string; arguments: unknown;
  caller: string; callee: string; correlation_id: string | null; reply_to: string; deadline: number;
  parent_call_id: string | null; children: string[]; status: ToolCallStatus; result: ToolResult | null;
  created_at: number; seq: number; approval_id: string | null; approval_digest: string | null;
}
/** Where a call is: its conversation, and its approval while it is parked. */
export interface CallLocation { conversation: string; approval_id?: string | null }
export interface ToolResultSpec {
  call_id: string; sender?: string | null; status: "ok" | "error"; result?: unknown; error?: ToolError | null;
  usage?: Usage | null;
}

// -- streams ----------------------------------------------------------------------------
export interface Chunk { chunk_seq: number; data: unknown }
export type ChunksSpec = { stream_id: string; sender?: string | null } & (
  | { chunk_seq: number; data?: unknown }
  | { chunks: Chunk[] }
);
export interface ChunksReceipt { stream_id: string; accepted: number; cancelled?: boolean }
export type EndStatus = "complete" | "error" | "cancelled";
export interface StreamEndSpec {
  stream_id: string; sender?: string | null; status?: EndStatus; last_chunk_seq?: number | null; error?: string;
  usage?: Usage | null;
}
export interface StreamEnd {
  stream_id: string; status: EndStatus; last_chunk_seq: number | null; error: string; usage: Usage | null; by: string;
  at: number;
}
export type StreamEvent =
  | { type: "chunk" | "late"; chunk_seq: number; data: unknown }
  | { type: "gap"; from_chunk_seq: number; to_chunk_seq: number }
  | { type: "end"; end: StreamEnd };

// -- approvals, audit, system -----------------------------------------------------------
export type ApprovalState = "pending" | "approved" | "rejected" | "expired";
export interface Approval {
  namespace: string; tenant: string; approval_id: string; kind?: "tool_call" | "publish"; conversation?: string;
  call_id?: string; tool?: string; caller?: string; callee?: string; topic?: string; envelope: Record<string, unknown>;
  digest: string; state: ApprovalState; requested_at: number; expires_at: number; decided_by: string | null;
  decided_at: number | null; reason: string; published_seq: number | null;
}
export interface AuditRecord {
  at: string; action: string; outcome: string; status: number; code: string | null; key_id: string | null;
  namespace: string | null; tenant: string | null; method: string; path: string;
}
export interface AuditPage { records: AuditRecord[]; scanned: number; truncated: boolean }
export interface Health { status: string; broker: boolean; ready: boolean }
/** The caller's key (GET /v1/whoami): an admin key has no namespace/tenant. */
export interface WhoAmI { key_id: string; admin: boolean; namespace: string | null; tenant: string | null; grants: Grant[] }
/** One worker of the fleet; a worker that did not answer has up false and nothing else. */
export interface WorkerStats {
  url: string; up: boolean; ready?: boolean; broker?: boolean; partitions?: number[]; records_published?: number;
  records_delivered?: number; sse_clients?: number; at?: number;
}
/** The fleet (GET /v1/workers): who answered, the state partitions no worker owns, every worker. */
export interface Fleet { answered_by: string; state_partitions: number; unowned: number[]; workers: WorkerStats[] }
/** One watched GET as the worker read it: its status and JSON body (an error body too). */
export interface WatchResult { path: string; status: number; body: unknown }
/** A snapshot event of /v1/watch: every watched path, in the order given. */
export interface WatchSnapshot { results: WatchResult[] }
