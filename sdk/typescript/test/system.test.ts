/** System calls beyond the contract: ready() on a 503 that is no Health, watch() after a drop. */
import assert from "node:assert/strict";
import { it } from "node:test";

import { Agentbus, UnavailableError, type WatchSnapshot } from "../src/index.js";
import { scriptedFetch } from "./fixtures.js";

const noSleep = async (): Promise<void> => undefined;

it("ready() throws a 503 that is not a Health (a proxy's page) at once, without retrying", async () => {
  const { fetch, seen } = scriptedFetch([{ status: 503, headers: { "content-type": "text/html" }, body_text: "<h1>503</h1>" }]);
  const bus = new Agentbus({ urls: "http://bus.test", apiKey: "k", fetch, sleep: noSleep });
  const error = await bus.ready().then(() => assert.fail("no error"), (e: unknown) => e);
  assert.ok(error instanceof UnavailableError);
  assert.equal(error.code, "http_503");
  assert.equal(seen.length, 1);
});

it("watch() reopens a dropped stream with the same paths and goes on yielding snapshots", async () => {
  const snapshot = (lag: number): WatchSnapshot => ({ results: [{ path: "/v1/subscriptions/demo/acme/billing/lag", status: 200, body: { total_lag: lag } }] });
  const stream = (s: WatchSnapshot) => ({ status: 200, headers: { "content-type": "text/event-stream" }, body_text: `: watching 1 path(s)\n\nevent: snapshot\ndata: ${JSON.stringify(s)}\n\n` });
  const { fetch, seen } = scriptedFetch([stream(snapshot(6)), stream(snapshot(0))]);
  const bus = new Agentbus({ urls: "http://bus.test", apiKey: "k", fetch, sleep: noSleep });
  const got: WatchSnapshot[] = [];
  for await (const s of bus.watch(["/v1/subscriptions/demo/acme/billing/lag"])) {
    got.push(s);
    if (got.length === 2) break;
  }
  assert.deepEqual(got, [snapshot(6), snapshot(0)]);
  assert.equal(seen.length, 2);
  for (const request of seen) {
    assert.equal(request.url.pathname, "/v1/watch");
    assert.deepEqual(request.url.searchParams.getAll("path"), ["/v1/subscriptions/demo/acme/billing/lag"]);
    assert.equal(request.url.searchParams.has("interval_ms"), false);
  }
});
