/** An SSE endpoint followed as an async iterator, resumed with Last-Event-ID after a drop. */
import { AgentbusError } from "./errors.js";
import { sleep, type HttpClient, type Query } from "./http.js";
import { sseEvents, type SseEvent } from "./sse.js";

const RECONNECT_DELAY_MS = 250;

export interface FollowOptions {
  /** Resume after this event id (what the last run of the iterator saw). */
  lastEventId?: string;
  /** Stop following (the iterator ends). */
  signal?: AbortSignal;
  /** Reconnect after the connection drops (default true). */
  resume?: boolean;
}

/**
 * Opens path as an event stream and yields map(event) for each event (undefined: skipped).
 * When the connection drops it reconnects with the last event id seen, so nothing is lost
 * or repeated where the server resumes exactly (topics, conversations). Refusals that
 * retrying cannot fix are thrown; the HTTP client retries the rest.
 */
export async function* follow<T>(
  http: HttpClient,
  path: string,
  query: Query,
  map: (event: SseEvent) => T | undefined,
  options: FollowOptions = {},
): AsyncGenerator<T> {
  let lastEventId = options.lastEventId;
  for (;;) {
    const headers: Record<string, string> = lastEventId ? { "last-event-id": lastEventId } : {};
    const response = await http.send("GET", path, { query, headers, stream: true, signal: options.signal });
    if (!response.body) throw new AgentbusError({ code: "empty_stream", message: `${path}: no body`, status: 0 });
    try {
      for await (const event of sseEvents(response.body, options.signal)) {
        if (event.id) lastEventId = event.id;
        const item = map(event);
        if (item !== undefined) yield item;
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      if (error instanceof AgentbusError && !error.retriable) throw error;
      // a dropped connection: reconnect below
    }
    if (options.signal?.aborted || options.resume === false) return;
    await sleep(RECONNECT_DELAY_MS, options.signal).catch(() => undefined);
  }
}

export function parseJson(data: string): unknown {
  return JSON.parse(data) as unknown;
}
