/** contract/stream_order.json: chunk arrivals and what the in-order reader yields. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ChunkOrderer, type StreamEnd, type StreamEvent } from "../src/index.js";
import { load } from "./fixtures.js";

interface Input {
  at: number;
  chunk?: { chunk_seq: number; data: unknown };
  gap?: { from_chunk_seq: number; to_chunk_seq: number };
  end?: StreamEnd;
}
interface OrderCase {
  name: string;
  gap_timeout_ms: number;
  from_chunk: number;
  inputs: Input[];
  yields: StreamEvent[];
}

function feed(orderer: ChunkOrderer, input: Input): StreamEvent[] {
  if (input.chunk) return orderer.chunk(input.at, input.chunk.chunk_seq, input.chunk.data);
  if (input.gap) return orderer.gap(input.at, input.gap.from_chunk_seq, input.gap.to_chunk_seq);
  if (input.end) return orderer.end(input.at, input.end);
  return orderer.tick(input.at);
}

describe("contract/stream_order.json", () => {
  for (const c of load<{ cases: OrderCase[] }>("stream_order.json").cases) {
    it(c.name, () => {
      const orderer = new ChunkOrderer(c.gap_timeout_ms, c.from_chunk);
      assert.deepEqual(c.inputs.flatMap((input) => feed(orderer, input)), c.yields);
    });
  }
});
