/** The SDK against contract/: exact requests, parsed answers, mapped errors, retries. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Agentbus, AgentbusError } from "../src/index.js";
import { load, requestFiles, scriptedFetch, type FixtureResponse, type RequestFixture } from "./fixtures.js";
import { expectItems, OPS } from "./ops.js";

const noSleep = async (): Promise<void> => undefined;

function errorResult(error: unknown): unknown {
  assert.ok(error instanceof AgentbusError, `expected an AgentbusError, got ${String(error)}`);
  return { error: { type: error.constructor.name, code: error.code, status: error.status, retriable: error.retriable } };
}

/** The query as the fixtures write it: a repeated parameter is the list of its values, in order. */
function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    query[name] = values.length === 1 ? values[0]! : values;
  }
  return query;
}

function checkRequest(f: RequestFixture, seen: { url: URL; method: string; headers: Headers; body: unknown }, apiKey: string): void {
  assert.equal(seen.method, f.request.method);
  assert.equal(seen.url.pathname, f.request.path);
  assert.deepEqual(queryOf(seen.url), f.request.query);
  assert.equal(seen.headers.get("authorization"), `Bearer ${apiKey}`);
  for (const [name, value] of Object.entries(f.request.headers)) assert.equal(seen.headers.get(name), value, name);
  assert.deepEqual(seen.body, f.request.body);
}

for (const [file, doc] of requestFiles()) {
  describe(`contract/requests/${file}`, () => {
    for (const f of doc.fixtures.filter((x) => !x.request.websocket)) {
      it(f.name, async () => {
        const op = OPS[f.call.op];
        assert.ok(op, `no SDK method for ${f.call.op}`);
        const { fetch, seen } = scriptedFetch([f.response]);
        const bus = new Agentbus({ urls: doc.client.base_url, apiKey: doc.client.api_key, namespace: doc.client.namespace, tenant: doc.client.tenant, fetch, sleep: noSleep });
        expectItems(Array.isArray(f.result) ? f.result.length : 0);
        const result = await op(bus, f.call.args).catch(errorResult);
        assert.equal(seen.length, 1, "one request");
        checkRequest(f, seen[0]!, doc.client.api_key);
        assert.deepEqual(result, f.result);
      });
    }
  });
}

interface ErrorsDoc {
  client: { base_urls: string[]; api_key: string };
  errors: { code: string; status: number; retriable: boolean; type: string; response: FixtureResponse; retry_after_ms?: number }[];
  fallbacks: { name: string; response: FixtureResponse; expect: { type: string; code: string; status: number; retriable: boolean; details: unknown } }[];
  retry: {
    name: string;
    client?: { max_attempts?: number };
    steps: { url: number; response?: FixtureResponse; transport_error?: string }[];
    expect: { attempts: number; outcome: "ok" | "error"; code?: string; min_delay_before_attempt_ms?: Record<string, number> };
  }[];
}

const errors = load<ErrorsDoc>("errors.json");

function client(fetch: (input: string, init: RequestInit) => Promise<Response>, sleep: (ms: number) => Promise<void> = noSleep, maxAttempts = 1): Agentbus {
  return new Agentbus({ urls: errors.client.base_urls, apiKey: errors.client.api_key, fetch, sleep, retry: { maxAttempts } });
}

describe("contract/errors.json: every error code", () => {
  for (const e of errors.errors) {
    it(`${e.code} (${e.status})`, async () => {
      const { fetch } = scriptedFetch([e.response]);
      const error = await client(fetch).health().then(() => assert.fail("no error"), (x: unknown) => x);
      assert.ok(error instanceof AgentbusError);
      assert.equal(error.constructor.name, e.type);
      assert.equal(error.code, e.code);
      assert.equal(error.status, e.status);
      assert.equal(error.retriable, e.retriable);
      const body = e.response.body as { error: { message: string; details: unknown } };
      assert.equal(error.message, body.error.message);
      assert.deepEqual(error.details, body.error.details);
      if (e.retry_after_ms !== undefined) assert.equal(error.retryAfterMs, e.retry_after_ms);
    });
  }
  for (const f of errors.fallbacks) {
    it(f.name, async () => {
      const { fetch } = scriptedFetch([f.response]);
      const error = await client(fetch).health().then(() => assert.fail("no error"), (x: unknown) => x);
      assert.ok(error instanceof AgentbusError);
      assert.deepEqual(
        { type: error.constructor.name, code: error.code, status: error.status, retriable: error.retriable, details: error.details },
        f.expect,
      );
    });
  }
});

describe("contract/errors.json: retries", () => {
  for (const r of errors.retry) {
    it(r.name, async () => {
      const { fetch, seen } = scriptedFetch(r.steps.map((s) => s.response ?? new TypeError(`fetch failed: ${s.transport_error}`)));
      const delays: number[] = [];
      const sleep = async (ms: number): Promise<void> => void delays.push(ms);
      const bus = client(fetch, sleep, r.client?.max_attempts ?? 8);
      const outcome = await bus.health().then(() => ({ outcome: "ok" as const }), (e: unknown) => ({ outcome: "error" as const, code: (e as AgentbusError).code }));
      assert.equal(seen.length, r.expect.attempts);
      assert.equal(outcome.outcome, r.expect.outcome);
      if (r.expect.code) assert.equal((outcome as { code: string }).code, r.expect.code);
      r.steps.forEach((step, i) => assert.equal(seen[i]?.url.origin, new URL(errors.client.base_urls[step.url]!).origin, `attempt ${i + 1} goes to URL ${step.url}`));
      for (const [attempt, min] of Object.entries(r.expect.min_delay_before_attempt_ms ?? {})) {
        assert.ok((delays[Number(attempt) - 2] ?? 0) >= min, `waited ${delays[Number(attempt) - 2]} ms before attempt ${attempt}`);
      }
    });
  }
});
