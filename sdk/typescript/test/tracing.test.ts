/** W3C traceparent goes out with every request when an OpenTelemetry API is in use. */
import assert from "node:assert/strict";
import { afterEach, it } from "node:test";

import { Agentbus, useTracing } from "../src/index.js";
import { scriptedFetch } from "./fixtures.js";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const ok = { status: 200, headers: { "content-type": "application/json" }, body: { status: "ok", broker: true, ready: true } };

afterEach(() => useTracing(undefined));

it("sends the active context's traceparent", async () => {
  useTracing({
    context: { active: () => "the active context" },
    propagation: {
      inject: (context, carrier) => {
        assert.equal(context, "the active context");
        carrier["traceparent"] = TRACEPARENT;
      },
    },
  });
  const { fetch, seen } = scriptedFetch([ok]);
  await new Agentbus({ urls: "http://bus.test", apiKey: "k", fetch }).health();
  assert.equal(seen[0]?.headers.get("traceparent"), TRACEPARENT);
});

it("sends no traceparent without OpenTelemetry", async () => {
  const { fetch, seen } = scriptedFetch([ok]);
  await new Agentbus({ urls: "http://bus.test", apiKey: "k", fetch }).health();
  assert.equal(seen[0]?.headers.get("traceparent"), null);
});
