/** The contract's call.op names mapped to this SDK's methods. */
import type { Agentbus } from "../src/index.js";

type Args = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixture arguments are JSON
type Op = (bus: Agentbus, a: Args) => Promise<unknown>;

async function take<T>(iterator: AsyncIterable<T>, count: number): Promise<T[]> {
  const items: T[] = [];
  if (count === 0) return items;
  for await (const item of iterator) {
    items.push(item);
    if (items.length >= count) break;
  }
  return items;
}

/** For event streams: how many items the fixture expects (the iterator would go on following). */
export let expectedItems = 0;
export function expectItems(n: number): void {
  expectedItems = n;
}

export const OPS: Record<string, Op> = {
  "topics.create": (b, a) => b.topics.create(a.spec),
  "topics.list": (b, a) => b.topics.list(a),
  "topics.get": (b, a) => b.topics.get(a.topic),
  "topics.delete": (b, a) => b.topics.delete(a.topic),
  "topics.bind_schema": (b, a) => b.topics.bindSchema(a.topic, a.binding),
  "topics.unbind_schema": (b, a) => b.topics.unbindSchema(a.topic),
  "publish.one": (b, a) => b.publish(a.envelope),
  "publish.batch": (b, a) => b.publishBatch(a.records).then((results) => ({ results })),
  "subscribe.topic": (b, a) => take(b.subscribe(a.topic, { from: a.from, lastEventId: a.last_event_id }), expectedItems),
  "subscriptions.create": (b, a) => b.subscriptions.create(a.spec),
  "subscriptions.list": (b, a) => b.subscriptions.list(a),
  "subscriptions.get": (b, a) => b.subscriptions.get(a.subscription),
  "subscriptions.delete": (b, a) => b.subscriptions.delete(a.subscription),
  "subscriptions.pull": (b, a) => b.subscriptions.consumer(a.subscription).pull(a.options),
  "subscriptions.ack": (b, a) => b.subscriptions.consumer(a.subscription).ack(a.delivery_ids),
  "subscriptions.nack": (b, a) => b.subscriptions.consumer(a.subscription).nack(a.delivery_ids, { action: a.action, reason: a.reason }),
  "subscriptions.release": (b, a) => b.subscriptions.consumer(a.subscription).release(a.session),
  "subscriptions.lag": (b, a) => b.subscriptions.lag(a.subscription),
  "subscriptions.seek": (b, a) => b.subscriptions.seek(a.subscription, a.target),
  "subscriptions.dead_letters": (b, a) => b.subscriptions.deadLetters(a.subscription, { limit: a.limit, after: a.after }),
  "subscriptions.redrive": (b, a) =>
    b.subscriptions.redrive(a.subscription, a.all ? { all: true } : { dead_letter_ids: a.dead_letter_ids }),
  "subscriptions.events": (b, a) => take(b.subscriptions.consumer(a.subscription).events(), expectedItems),
  "agents.register": (b, a) => b.agents.register(a.spec),
  "agents.list": (b, a) => b.agents.list(a),
  "agents.get": (b, a) => b.agents.get(a.agent),
  "agents.delete": (b, a) => b.agents.delete(a.agent),
  "agents.set_state": (b, a) => b.agents.setState(a.agent, a.state, a.reason),
  "agents.heartbeat": (b, a) => b.agents.heartbeat(a.agent, a.status),
  "agents.send": (b, a) => b.agents.send(a.agent, a.message),
  "agents.inbox_pull": (b, a) => b.agents.inbox(a.agent).pull(a.options),
  "agents.inbox_ack": (b, a) => b.agents.inbox(a.agent).ack(a.delivery_ids),
  "agents.inbox_nack": (b, a) => b.agents.inbox(a.agent).nack(a.delivery_ids, { reason: a.reason }),
  "agents.inbox_release": (b, a) => b.agents.inbox(a.agent).release(a.session),
  "agents.inbox_events": (b, a) => take(b.agents.inbox(a.agent).events(), expectedItems),
  "agents.inbox_lag": (b, a) => b.agents.inbox(a.agent).lag(),
  "conversations.create": (b, a) => b.conversations.create(a.spec),
  "conversations.list": (b, a) => b.conversations.list(a),
  "conversations.get": (b, a) => b.conversations.get(a.conversation),
  "conversations.delete": (b, a) => b.conversations.delete(a.conversation),
  "conversations.transition": (b, a) => b.conversations.transition(a.conversation, a.to, a.reason),
  "conversations.append": (b, a) => b.conversations.append(a.conversation, a.message),
  "conversations.messages": (b, a) => {
    const { conversation, ...query } = a;
    return b.conversations.messages(conversation, query);
  },
  "conversations.follow": (b, a) =>
    take(b.conversations.follow(a.conversation, { from_seq: a.from_seq, lastEventId: a.last_event_id }), expectedItems),
  "tool_calls.place": (b, a) => b.toolCalls.place(a.conversation, a.call),
  "tool_calls.settle": (b, a) => b.toolCalls.settle(a.conversation, a.result),
  "tool_calls.get": (b, a) => b.toolCalls.get(a.call_id, a.wait_ms),
  "tool_calls.cancel": (b, a) => b.toolCalls.cancel(a.call_id, a.reason),
  "tool_calls.location": (b, a) => b.toolCalls.location(a.call_id),
  "streams.write_chunks": (b, a) => b.streams.writeChunks(a.conversation, a.chunks),
  "streams.end": (b, a) => b.streams.end(a.conversation, a.end),
  "streams.cancel": (b, a) => b.streams.cancel(a.conversation, a.stream_id, a.reason),
  "streams.read": (b, a) =>
    take(b.streams.read(a.conversation, a.stream_id, { from_chunk: a.from_chunk, gap_timeout_ms: a.gap_timeout_ms }), expectedItems),
  "approvals.list": (b, a) => b.approvals.list(a),
  "approvals.get": (b, a) => b.approvals.get(a.approval_id),
  "approvals.approve": (b, a) => b.approvals.approve(a.approval_id, a.digest, a.reason),
  "approvals.reject": (b, a) => b.approvals.reject(a.approval_id, a.digest, a.reason),
  "schemas.list_subjects": (b, a) => b.schemas.listSubjects(a),
  "schemas.register": (b, a) => b.schemas.register(a.subject, a.submission.schema, a.submission.description),
  "schemas.versions": (b, a) => b.schemas.versions(a.subject),
  "schemas.get_version": (b, a) => b.schemas.getVersion(a.subject, a.version),
  "schemas.delete_version": (b, a) => b.schemas.deleteVersion(a.subject, a.version),
  "schemas.check_compatibility": (b, a) => b.schemas.checkCompatibility(a.subject, a.check.schema, a.check.mode),
  "schemas.get_config": (b, a) => b.schemas.getConfig(a.subject),
  "schemas.set_config": (b, a) => b.schemas.setConfig(a.subject, a.compatibility),
  "keys.create": (b, a) => b.keys.create(a.spec),
  "keys.list": (b) => b.keys.list(),
  "keys.get": (b, a) => b.keys.get(a.key_id),
  "keys.revoke": (b, a) => b.keys.revoke(a.key_id),
  "keys.rotate": (b, a) => b.keys.rotate(a.key_id),
  "keys.set_quota": (b, a) => b.keys.setQuota(a.key_id, a.quota),
  "quotas.get": (b, a) => b.quotas.get(a),
  "quotas.set": (b, a) => b.quotas.set(a.quota, a),
  "rules.get": (b, a) => b.rules.get(a),
  "rules.put": (b, a) => b.rules.put(a.rules, a),
  "rules.delete": (b, a) => b.rules.delete(a),
  "audit.search": (b, a) => b.audit.search(a),
  "system.health": (b) => b.health(),
  "system.live": (b) => b.live(),
  "system.ready": (b) => b.ready(),
  "system.whoami": (b) => b.whoami(),
  "system.workers": (b) => b.workers(),
  "system.watch": (b, a) => take(b.watch(a.paths, { intervalMs: a.interval_ms }), expectedItems),
  "system.metrics": (b) => b.metrics(),
  "system.openapi": (b) => b.openapi(),
};
