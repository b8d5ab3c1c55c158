/**
 * Server-Sent Events, parsed as the WHATWG specification says ("interpret an event
 * stream"): LF, CR or CRLF end lines (also split across reads), a leading BOM is skipped,
 * comments are ignored, data lines join with LF, the last event id persists.
 */

export interface SseEvent {
  /** The event name; "message" when the stream gave none. */
  type: string;
  data: string;
  /** The last event id when the event was dispatched ("" when none was set). */
  id: string;
}

export class SseParser {
  private readonly decoder = new TextDecoder("utf-8");
  private buffer = "";
  private sawCr = false; // the previous chunk ended with CR: a leading LF is its pair
  private firstChunk = true;
  private data = "";
  private dataSeen = false;
  private type = "";
  /** The last event id (persists across events, as in the spec). */
  lastEventId = "";
  /** The reconnection time the stream asked for, if any. */
  retryMs: number | null = null;

  /** Feed a read (bytes or text); the events it completes. */
  push(chunk: Uint8Array | string): SseEvent[] {
    let text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.firstChunk && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.firstChunk = false;
    }
    if (text.length > 0) {
      if (this.sawCr && text.startsWith("\n")) text = text.slice(1);
      this.sawCr = false;
    }
    this.buffer += text;
    return this.drainLines();
  }

  /** The stream ended: an incomplete event is dropped. */
  end(): SseEvent[] {
    const rest = this.decoder.decode();
    return rest ? this.push(rest) : [];
  }

  private drainLines(): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer[i];
      if (ch !== "\n" && ch !== "\r") continue;
      const line = this.buffer.slice(start, i);
      if (ch === "\r") {
        if (i + 1 === this.buffer.length) this.sawCr = true; // its LF may come in the next read
        else if (this.buffer[i + 1] === "\n") i++;
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.field(field, value);
    return undefined;
  }

  private field(field: string, value: string): void {
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data += value + "\n";
        this.dataSeen = true;
        break;
      case "id":
        if (!value.includes("\u0000")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default: // unknown fields are ignored
    }
  }

  private dispatch(): SseEvent | undefined {
    const hasData = this.dataSeen;
    const event: SseEvent = { type: this.type || "message", data: this.data.slice(0, -1), id: this.lastEventId };
    this.data = "";
    this.dataSeen = false;
    this.type = "";
    return hasData ? event : undefined;
  }
}

/** The events of a response body, as they arrive; stops when the body ends or signal aborts. */
export async function* sseEvents(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  const reader = body.getReader();
  const onAbort = (): void => void reader.cancel(signal?.reason).catch(() => undefined);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(value);
    }
    yield* parser.end();
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await reader.cancel().catch(() => undefined); // the consumer stopped early: close the connection
  }
}
