/**
 * The planner/solver example, checked end to end against a real fleet:
 * two agents register and beat, exchange a message, the planner calls the solver's `add`
 * tool and gets its result, streams a reply (over a WebSocket through one worker) that a
 * reader follows in order through the other, calls `transfer` (a tool that requires
 * approval) which this program approves quoting the digest, and publishes a record a
 * require_approval rule parks until it is approved.
 *
 *     AGENTBUS_URLS=http://127.0.0.1:6066,http://127.0.0.1:6067 AGENTBUS_ADMIN_KEY=... \
 *       node build/examples/planner-solver.js
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import { Agentbus, ConflictError, NotFoundError, type InboxMessage, type StreamEvent } from "../src/index.js";

const urls = (process.env["AGENTBUS_URLS"] ?? "http://127.0.0.1:6066,http://127.0.0.1:6067").split(",");
const apiKey = process.env["AGENTBUS_ADMIN_KEY"] ?? "";
const namespace = "ts-sdk";
const tenant = `t${Date.now().toString(36)}`;
const [urlA, urlB] = [urls[0] as string, urls[1] ?? (urls[0] as string)];

const ADD = {
  name: "add",
  input_schema: { type: "object", properties: { numbers: { type: "array" } }, required: ["numbers"] },
  output_schema: { type: "number" },
};
const TRANSFER = {
  name: "transfer",
  input_schema: { type: "object", properties: { amount: { type: "number" } }, required: ["amount"] },
  requires_approval: true,
};

function step(text: string): void {
  console.log(`-- ${text}`);
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** sha256 of the canonical JSON (sorted keys, no spaces): what the bus digests. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

async function main(): Promise<void> {
  assert.ok(apiKey, "set AGENTBUS_ADMIN_KEY");
  // The planner talks to worker A, the solver to worker B (each fails over to the other).
  const viaA = await Agentbus.create({ urls: [urlA, urlB], apiKey, namespace, tenant });
  const viaB = await Agentbus.create({ urls: [urlB, urlA], apiKey, namespace, tenant });

  step("two agents register and beat");
  const solverMessages: InboxMessage[] = [];
  const plannerMessages: InboxMessage[] = [];
  const errors: unknown[] = [];
  const solver = viaB.agent({
    spec: { namespace, tenant, id: "solver", capabilities: [ADD, TRANSFER], heartbeat_interval_ms: 1000 },
    handlers: { message: (m) => (solverMessages.push(m), { answer: `solved ${JSON.stringify(m.payload)}` }) },
    tools: {
      add: (args) => (args as { numbers: number[] }).numbers.reduce((a, b) => a + b, 0),
      transfer: (args) => ({ sent: (args as { amount: number }).amount }),
    },
    pullWaitMs: 1000,
    onError: (e) => errors.push(e),
  });
  const planner = viaA.agent({
    spec: { namespace, tenant, id: "planner", heartbeat_interval_ms: 1000 },
    handlers: { message: (m) => void plannerMessages.push(m) },
    pullWaitMs: 1000,
    onError: (e) => errors.push(e),
  });
  await Promise.all([solver.start(), planner.start()]);
  for (const id of ["solver", "planner"]) {
    const agent = await eventually(`${id} alive`, async () => {
      const found = await viaA.agents.get(id);
      return found.liveness === "alive" ? found : undefined;
    });
    assert.equal(agent.state, "enabled");
  }
  const listed = await viaB.agents.list({ namespace, tenant, capability: "add" });
  assert.deepEqual(listed.map((a) => a.id), ["solver"]);

  step("a message and its reply through the inboxes");
  await viaA.agents.send("solver", { from: "planner", payload: { task: "2+2" }, message_id: "task-1" });
  const reply = await eventually("the solver's reply", async () => plannerMessages.find((m) => m.correlation_id === "task-1"));
  assert.deepEqual(reply.payload, { answer: 'solved {"task":"2+2"}' });
  assert.equal(solverMessages[0]?.from, `${namespace}/${tenant}/planner`);

  step("a tool call and its result");
  const conversation = await viaA.conversations.create({ namespace, tenant, id: "trip-1", participants: ["planner", "solver"] });
  assert.equal(conversation.state, "open");
  const call = await viaA.toolCalls.callAndWait("trip-1", {
    tool: "add", arguments: { numbers: [2, 3, 5] }, caller: "planner", callee: "solver", timeout_ms: 20_000,
  });
  assert.equal(call.status, "done");
  assert.equal(call.result?.status, "ok");
  assert.equal(call.result?.result, 10);

  step("a streamed reply, written through A over a WebSocket, read in order through B");
  const tokens = ["Two", " flights", " to", " Lisbon", "."];
  const read = (async () => {
    const events: StreamEvent[] = [];
    for await (const event of viaB.streams.read("trip-1", "reply-1", { gap_timeout_ms: 2000 })) events.push(event);
    return events;
  })();
  const writer = await viaA.streams.writer("trip-1", "reply-1", { sender: "planner" });
  assert.equal(writer.transportKind, "websocket");
  for (const token of tokens) await writer.write({ text: token });
  writer.usage = { output_tokens: tokens.length, model: "example" };
  const end = await writer.close();
  assert.equal(end?.status, "complete");
  assert.equal(end?.last_chunk_seq, tokens.length - 1);
  const events = await read;
  const chunks = events.filter((e) => e.type === "chunk");
  assert.deepEqual(chunks.map((e) => e.type === "chunk" && e.chunk_seq), [0, 1, 2, 3, 4]);
  assert.equal(chunks.map((e) => (e.type === "chunk" ? (e.data as { text: string }).text : "")).join(""), tokens.join(""));
  assert.equal(events.at(-1)?.type, "end");
  assert.equal(events.filter((e) => e.type === "gap").length, 0);

  step("an HTTP writer works the same, and a consumer's cancel stops it");
  const httpWriter = await viaB.streams.writer("trip-1", "reply-2", { sender: "planner", transport: "http" });
  await httpWriter.write({ text: "partial" });
  await httpWriter.flush();
  await viaA.streams.cancel("trip-1", "reply-2", "user pressed stop");
  const refused = await httpWriter.write({ text: "more" }).then(() => httpWriter.flush()).then(() => undefined, (e: unknown) => e);
  assert.ok(refused instanceof ConflictError && refused.code === "stream_cancelled", String(refused));

  step("a call to a tool that requires approval is parked, then approved quoting the digest");
  const parked = await viaA.toolCalls.place("trip-1", {
    tool: "transfer", arguments: { amount: 129.9 }, caller: "planner", callee: "solver", timeout_ms: 20_000,
  });
  assert.equal(parked.status, "awaiting_approval");
  assert.ok(parked.approval_id && parked.approval_digest);
  const pending = await viaB.approvals.list({ state: "pending", agent: "solver" });
  assert.deepEqual(pending.map((a) => a.approval_id), [parked.approval_id]);
  const approval = await viaB.approvals.get(parked.approval_id);
  assert.equal(approval.digest, parked.approval_digest);
  assert.equal(createHash("sha256").update(canonical(approval.envelope)).digest("hex"), approval.digest);
  const mismatch = await viaB.approvals.approve(approval.approval_id, "0".repeat(64)).then(() => undefined, (e: unknown) => e);
  assert.ok(mismatch instanceof ConflictError && mismatch.code === "digest_mismatch", String(mismatch));
  const decided = await viaB.approvals.approve(approval.approval_id, approval.digest, "within budget");
  assert.equal(decided.state, "approved");
  const settled = await viaA.toolCalls.waitFor(parked, { waitMs: 20_000 });
  assert.equal(settled.status, "done");
  assert.deepEqual(settled.result?.result, { sent: 129.9 });

  step("a publish parked by a require_approval rule, approved, then read by a subscriber");
  await viaA.topics.create({ namespace, tenant, name: "payments", partitions: 1 });
  await viaA.rules.put([{ id: "gate", match: { topics: "payments" }, action: { type: "require_approval", reason: "money moves" } }]);
  const receipt = await viaA.publish({ topic: `${namespace}/${tenant}/payments`, payload: { amount: 10 }, message_id: "pay-1" });
  assert.equal(receipt.status, "awaiting_approval");
  // a gated publish's approval may show on another worker a moment after the receipt
  const gate = await eventually("the publish's approval", () =>
    viaB.approvals.get(receipt.approval_id as string).catch((e: unknown) => {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }),
  );
  assert.equal(gate.kind, "publish");
  await viaB.approvals.approve(gate.approval_id, gate.digest);
  const abort = new AbortController();
  for await (const event of viaB.subscribe("payments", { from: "earliest", signal: abort.signal })) {
    assert.deepEqual(event.record.payload, { amount: 10 });
    assert.equal(event.record.message_id, "pay-1");
    abort.abort();
  }

  step("the agents stop cleanly");
  await Promise.all([solver.stop(), planner.stop()]);
  assert.deepEqual(errors, [], "the runtimes reported errors");
  await viaA.conversations.transition("trip-1", "closed");
  console.log("planner-solver: all checks passed");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
