/**
 * Puts a stream's chunks in chunk_seq order, as docs/streams.md describes the server
 * doing it, so a reader yields each chunk once and in order even across reconnects
 * (where the server may send a chunk again) or when fed raw arrivals. Time is passed in,
 * so the rules are testable without clocks (contract/stream_order.json).
 */
import type { StreamEnd, StreamEvent } from "./types.js";

interface Hole {
  since: number;
}

export class ChunkOrderer {
  private next: number;
  private readonly held = new Map<number, unknown>();
  private readonly reported = new Set<number>(); // seqs yielded as a gap, not yet late
  private hole: Hole | null = null;
  private pendingEnd: StreamEnd | null = null;
  private ended = false;

  constructor(readonly gapTimeoutMs: number, fromChunk = 0) {
    this.next = fromChunk;
  }

  /** Whether the end was yielded: nothing more will be. */
  get done(): boolean {
    return this.ended;
  }

  /** The chunk_seq a reconnecting reader starts from. */
  get resumeFrom(): number {
    return this.next;
  }

  /** When the current hole times out (ms on the caller's clock), or null. */
  get deadline(): number | null {
    return this.hole ? this.hole.since + this.gapTimeoutMs : null;
  }

  /** Time passed: reports what timed out up to now. */
  tick(now: number): StreamEvent[] {
    const out: StreamEvent[] = [];
    let deadline = this.deadline;
    while (!this.ended && deadline !== null && deadline <= now) {
      out.push(...this.reportHole(deadline));
      deadline = this.deadline;
    }
    return out;
  }

  chunk(now: number, chunkSeq: number, data: unknown): StreamEvent[] {
    const out = this.tick(now);
    if (this.ended || this.held.has(chunkSeq)) return out;
    if (chunkSeq < this.next) {
      if (this.reported.delete(chunkSeq)) out.push({ type: "late", chunk_seq: chunkSeq, data });
      return out;
    }
    this.held.set(chunkSeq, data);
    out.push(...this.drain());
    this.watch(now);
    return out;
  }

  /** The server reported a gap: those chunks will not come in order. */
  gap(now: number, from: number, to: number): StreamEvent[] {
    const out = this.tick(now);
    if (this.ended || to < this.next) return out;
    out.push(...this.skipTo(Math.max(from, this.next), to));
    this.hole = null;
    out.push(...this.drain());
    this.watch(now);
    return out;
  }

  end(now: number, end: StreamEnd): StreamEvent[] {
    const out = this.tick(now);
    if (this.ended) return out;
    this.pendingEnd = end;
    out.push(...this.drain());
    this.watch(now);
    return out;
  }

  private reportHole(at: number): StreamEvent[] {
    const firstHeld = Math.min(...this.held.keys());
    const last = Number.isFinite(firstHeld) ? firstHeld - 1 : (this.pendingEnd?.last_chunk_seq ?? this.next - 1);
    this.hole = null;
    const out = this.skipTo(this.next, last);
    out.push(...this.drain());
    this.watch(at);
    return out;
  }

  private skipTo(from: number, to: number): StreamEvent[] {
    if (to < from) return [];
    for (let seq = from; seq <= to; seq++) this.reported.add(seq);
    this.next = to + 1;
    return [{ type: "gap", from_chunk_seq: from, to_chunk_seq: to }];
  }

  /** Yields held chunks from next on, then the end when nothing is missing before it. */
  private drain(): StreamEvent[] {
    const out: StreamEvent[] = [];
    while (this.held.has(this.next)) {
      out.push({ type: "chunk", chunk_seq: this.next, data: this.held.get(this.next) });
      this.held.delete(this.next);
      this.next++;
    }
    const end = this.pendingEnd;
    if (end && this.held.size === 0 && (end.last_chunk_seq == null || this.next > end.last_chunk_seq)) {
      out.push({ type: "end", end });
      this.ended = true;
      this.hole = null;
    }
    return out;
  }

  /** Starts the timeout of a hole that has just appeared (an earlier one keeps its start). */
  private watch(now: number): void {
    if (this.ended) return;
    const tailMissing = this.pendingEnd?.last_chunk_seq != null && this.next <= this.pendingEnd.last_chunk_seq;
    const missing = this.held.size > 0 || tailMissing;
    if (!missing) this.hole = null;
    else if (this.hole === null) this.hole = { since: now };
  }
}
