/**
 * Token streams: write chunks (over a WebSocket in Node, by HTTP elsewhere or as a
 * fallback), end, cancel, and read in chunk_seq order with gap/late/end events.
 */
import { AgentbusError, ConflictError } from "./errors.js";
import { sleep } from "./http.js";
import { ChunkOrderer } from "./order.js";
import { path, scope, scoped, scopedPath } from "./refs.js";
import { Resource } from "./resources.js";
import { sseEvents } from "./sse.js";
import { openSocket, type FrameSocket } from "./socket.js";
import type { Chunk, ChunksReceipt, ChunksSpec, EndStatus, StreamEnd, StreamEndSpec, StreamEvent, Usage } from "./types.js";

export interface ReadOptions {
  from_chunk?: number;
  gap_timeout_ms?: number;
  signal?: AbortSignal;
}

export interface WriterOptions {
  /** The producing agent (a participant of the conversation). */
  sender?: string;
  /** "websocket" (default in Node) or "http". A refused WebSocket falls back to HTTP. */
  transport?: "websocket" | "http";
}

const OVER = new Set(["stream_ended", "stream_cancelled"]);
const MAX_BATCH = 1000;
const RESUME_BUDGET_MS = 60_000;

export class Streams extends Resource {
  writeChunks(conversation: string, chunks: ChunksSpec): Promise<ChunksReceipt> {
    return this.call("POST", `${scopedPath("conversations", this.defaults, conversation)}/stream-chunks`, { body: chunks });
  }
  end(conversation: string, end: StreamEndSpec): Promise<StreamEnd> {
    return this.call("POST", `${scopedPath("conversations", this.defaults, conversation)}/stream-end`, { body: end });
  }
  /** Cancels the stream as a consumer: the producer's next write is refused (stream_cancelled). */
  cancel(conversation: string, streamId: string, reason?: string): Promise<StreamEnd> {
    return this.call("POST", `${this.streamPath(conversation, streamId)}/cancel`, {
      body: reason === undefined ? {} : { reason },
    });
  }

  /**
   * The stream's events in chunk_seq order: chunks, gaps, late chunks, then its end.
   * A dropped connection is resumed after the last chunk or gap seen (each chunk comes
   * once); with no progress for a minute it gives up with the last error.
   */
  async *read(conversation: string, streamId: string, options: ReadOptions = {}): AsyncGenerator<StreamEvent> {
    const orderer = new ChunkOrderer(options.gap_timeout_ms ?? 2000, options.from_chunk ?? 0);
    let lastProgress = Date.now();
    for (;;) {
      const query = { from_chunk: orderer.resumeFrom === 0 && options.from_chunk === undefined ? undefined : orderer.resumeFrom,
        gap_timeout_ms: options.gap_timeout_ms };
      try {
        const response = await this.http.send("GET", this.streamPath(conversation, streamId), {
          query, stream: true, signal: options.signal,
        });
        for await (const event of sseEvents(response.body as ReadableStream<Uint8Array>, options.signal)) {
          for (const ordered of feed(orderer, event.type, event.data)) {
            lastProgress = Date.now();
            yield ordered;
          }
          if (orderer.done) return;
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (error instanceof AgentbusError && !error.retriable) throw error;
        if (Date.now() - lastProgress > RESUME_BUDGET_MS) throw error;
      }
      if (options.signal?.aborted) return;
      await sleep(250, options.signal).catch(() => undefined);
    }
  }

  /** A writer for one stream; end it with close() (or cancel/fail with close("error", why)). */
  async writer(conversation: string, streamId: string, options: WriterOptions = {}): Promise<StreamWriter> {
    const post = new PostTransport(this, conversation);
    if (options.transport === "http") return new StreamWriter(post, streamId, options.sender);
    const query = options.sender ? `?sender=${encodeURIComponent(options.sender)}` : "";
    const socket = await openSocket(this.http, `${this.streamPath(conversation, streamId)}/write${query}`).catch((error: unknown) => {
      if (error instanceof AgentbusError && error.status >= 400 && error.status < 500) throw error; // the bus refused it
      return undefined; // no WebSocket here: HTTP does the same
    });
    return new StreamWriter(socket ? new SocketTransport(socket) : post, streamId, options.sender);
  }

  streamPath(conversation: string, streamId: string): string {
    const [ns, tenant, id] = scoped(this.defaults, conversation);
    return path("/v1/streams", ns, tenant, id, streamId);
  }

  /** @internal the tenant defaults, for the agent runtime */
  scopeOf(): [string, string] {
    return scope(this.defaults);
  }
}

/** Feeds one server event to the orderer (the server already orders; this drops repeats). */
function feed(orderer: ChunkOrderer, type: string, data: string): StreamEvent[] {
  const now = Date.now();
  if (type === "chunk" || type === "late") {
    const chunk = JSON.parse(data) as Chunk;
    return orderer.chunk(now, chunk.chunk_seq, chunk.data);
  }
  if (type === "gap") {
    const gap = JSON.parse(data) as { from_chunk_seq: number; to_chunk_seq: number };
    return orderer.gap(now, gap.from_chunk_seq, gap.to_chunk_seq);
  }
  if (type === "end") return orderer.end(now, JSON.parse(data) as StreamEnd);
  return [];
}

/** How a writer's batches and end reach the bus. */
interface Transport {
  readonly kind: "websocket" | "http";
  sendChunks(body: { stream_id: string; sender?: string; chunks: Chunk[] }): Promise<void>;
  sendEnd(body: StreamEndSpec): Promise<StreamEnd>;
  close(): Promise<void>;
}

class PostTransport implements Transport {
  readonly kind = "http";
  constructor(private readonly streams: Streams, private readonly conversation: string) {}
  async sendChunks(body: { stream_id: string; sender?: string; chunks: Chunk[] }): Promise<void> {
    await this.streams.writeChunks(this.conversation, body);
  }
  sendEnd(body: StreamEndSpec): Promise<StreamEnd> {
    return this.streams.end(this.conversation, body);
  }
  async close(): Promise<void> {}
}

class SocketTransport implements Transport {
  readonly kind = "websocket";
  constructor(private readonly socket: FrameSocket) {}
  async sendChunks(body: { chunks: Chunk[] }): Promise<void> {
    await this.socket.request({ chunks: body.chunks });
  }
  async sendEnd(body: StreamEndSpec): Promise<StreamEnd> {
    const { stream_id: _id, sender: _sender, ...end } = body;
    const answer = await this.socket.request({ end });
    return answer["ended"] as StreamEnd;
  }
  close(): Promise<void> {
    return this.socket.close();
  }
}

/**
 * Writes one stream: chunks numbered 0, 1, 2, ... in write() order, one batch in flight at
 * a time (what is written meanwhile goes in the next), so a fast producer is paced by the
 * bus's acknowledgements. A failed batch fails the next write() and close(); a consumer's
 * cancel shows as ConflictError stream_cancelled.
 */
export class StreamWriter {
  private nextSeq = 0;
  private waiting: Chunk[] = [];
  private sending: Promise<void> | undefined;
  private failure: unknown;
  /** The bus's answer to the end, once closed. */
  end: StreamEnd | undefined;
  /** Sent with the end. */
  usage: Usage | undefined;

  constructor(private readonly transport: Transport, readonly streamId: string, readonly sender?: string) {}

  /** How the chunks travel: "websocket", or "http" (asked for, or the fallback). */
  get transportKind(): "websocket" | "http" {
    return this.transport.kind;
  }

  /** Queues a chunk; its chunk_seq. Waits only while a full batch waits for the one in flight. */
  async write(data: unknown): Promise<number> {
    this.checkOpen();
    const seq = this.nextSeq++;
    this.waiting.push({ chunk_seq: seq, data });
    this.sending ??= this.sendWaiting();
    if (this.waiting.length >= MAX_BATCH) await this.flush();
    return seq;
  }

  /** Waits until every chunk written so far is in Kafka (or throws why not). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Sends what waits, then the end (once). A complete close rethrows a failed chunk
   * write (after ending the stream with error, when it still takes an end); an error or
   * cancelled close on a stream a consumer cancelled returns undefined.
   */
  async close(status: EndStatus = "complete", error = ""): Promise<StreamEnd | undefined> {
    if (this.end) return this.end;
    try {
      await this.flush();
    } catch (failed) {
      const over = failed instanceof ConflictError && OVER.has(failed.code);
      if (status === "complete") {
        if (!over) await this.sendEnd("error", `a chunk write failed: ${String(failed)}`).catch(() => undefined);
        await this.transport.close();
        throw failed;
      }
      if (over) {
        await this.transport.close();
        return undefined;
      }
    }
    try {
      return await this.sendEnd(status, error);
    } finally {
      await this.transport.close();
    }
  }

  private async sendEnd(status: EndStatus, error: string): Promise<StreamEnd> {
    const body: StreamEndSpec = { stream_id: this.streamId, status, last_chunk_seq: this.nextSeq - 1, error: error.slice(0, 4096) };
    if (this.sender !== undefined) body.sender = this.sender;
    if (this.usage !== undefined) body.usage = this.usage;
    this.end = await this.transport.sendEnd(body);
    return this.end;
  }

  private async sendWaiting(): Promise<void> {
    try {
      while (this.waiting.length > 0 && this.failure === undefined) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        const body = this.sender === undefined ? { stream_id: this.streamId, chunks: batch } : { stream_id: this.streamId, sender: this.sender, chunks: batch };
        try {
          await this.transport.sendChunks(body);
        } catch (error) {
          this.failure = error;
        }
      }
    } finally {
      this.sending = undefined;
    }
  }

  private checkOpen(): void {
    if (this.end) throw new Error(`stream ${this.streamId} has ended`);
    if (this.failure !== undefined) throw this.failure;
  }
}
