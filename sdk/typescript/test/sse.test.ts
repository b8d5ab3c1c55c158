/** contract/sse.json: byte streams split into reads, and the events the parser yields. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { SseParser, sseEvents, type SseEvent } from "../src/index.js";
import { load } from "./fixtures.js";

interface SseCase {
  name: string;
  reads: ({ text: string } | { hex: string })[];
  events: SseEvent[];
  last_event_id: string;
  retry_ms: number | null;
}

const bytesOf = (read: SseCase["reads"][number]): Uint8Array =>
  "text" in read ? new TextEncoder().encode(read.text) : Uint8Array.from(Buffer.from(read.hex, "hex"));

describe("contract/sse.json", () => {
  for (const c of load<{ cases: SseCase[] }>("sse.json").cases) {
    it(c.name, () => {
      const parser = new SseParser();
      const events = c.reads.flatMap((read) => parser.push(bytesOf(read)));
      events.push(...parser.end());
      assert.deepEqual(events, c.events);
      assert.equal(parser.lastEventId, c.last_event_id);
      assert.equal(parser.retryMs, c.retry_ms);
    });
    it(`${c.name} (from a response body)`, async () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const read of c.reads) controller.enqueue(bytesOf(read));
          controller.close();
        },
      });
      const events: SseEvent[] = [];
      for await (const event of sseEvents(body)) events.push(event);
      assert.deepEqual(events, c.events);
    });
  }
});
