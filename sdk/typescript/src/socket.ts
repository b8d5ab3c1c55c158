/**
 * A JSON-frame WebSocket to the bus (the stream writer's), on the `ws` package: Node's
 * own WebSocket cannot send the Authorization header. Each frame gets one answer, in
 * order; a "cancelled" frame or a 4xxx close fails what is waiting.
 */
import { AgentbusError, ConnectionError, errorFromResponse } from "./errors.js";
import type { HttpClient } from "./http.js";

export interface FrameSocket {
  /** Sends a frame; its answer (or throws the bus's refusal as an AgentbusError). */
  request(frame: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

interface Waiter {
  resolve: (answer: Record<string, unknown>) => void;
  reject: (error: unknown) => void;
}

interface WsLike {
  on(event: "open", listener: () => void): void;
  on(event: "message", listener: (data: unknown) => void): void;
  on(event: "close", listener: (code: number, reason: Bytes) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  on(event: "unexpected-response", listener: (req: unknown, res: IncomingLike) => void): void;
  send(data: string): void;
  close(): void;
  readyState: number;
}
/** Node's Buffer, as far as this module uses it (no Node types in the browser build). */
interface Bytes {
  toString(encoding: "utf8"): string;
}
interface IncomingLike {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  on(event: "data", listener: (chunk: Bytes) => void): void;
  on(event: "end", listener: () => void): void;
}
type WsConstructor = new (url: string, options: { headers: Record<string, string> }) => WsLike;

export async function openSocket(http: HttpClient, pathAndQuery: string): Promise<FrameSocket> {
  const WebSocketClass = await loadWs();
  const url = http.baseUrl.replace(/^http/, "ws") + pathAndQuery;
  const ws = new WebSocketClass(url, { headers: { authorization: `Bearer ${http.options.apiKey}` } });
  await new Promise<void>((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", (error) => reject(new ConnectionError(`WebSocket ${url}: ${error.message}`, error)));
    ws.on("unexpected-response", (_req, res) => refusal(res).then(reject, reject));
  });
  return new JsonFrameSocket(ws);
}

async function loadWs(): Promise<WsConstructor> {
  const name = "ws"; // a variable: browser bundles must not pull it in
  const loaded = (await import(name)) as { default: WsConstructor };
  return loaded.default;
}

function refusal(res: IncomingLike): Promise<AgentbusError> {
  return new Promise((resolve) => {
    let text = "";
    res.on("data", (chunk) => (text += chunk.toString("utf8")));
    res.on("end", () => {
      const retryAfter = res.headers["retry-after"];
      resolve(errorFromResponse(res.statusCode ?? 0, text, typeof retryAfter === "string" ? retryAfter : null));
    });
  });
}

class JsonFrameSocket implements FrameSocket {
  private readonly waiters: Waiter[] = [];
  private failure: unknown;
  private readonly closed: Promise<void>;

  constructor(private readonly ws: WsLike) {
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => {
      this.fail(closeError(code, reason.toString("utf8")));
      resolve();
    }));
    ws.on("message", (data) => this.answer(JSON.parse(String(data)) as Record<string, unknown>));
    ws.on("error", (error) => this.fail(new ConnectionError(`WebSocket: ${error.message}`, error)));
  }

  request(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.ws.send(JSON.stringify(frame));
    });
  }

  async close(): Promise<void> {
    if (this.ws.readyState <= 1) this.ws.close();
    await this.closed;
  }

  private answer(answer: Record<string, unknown>): void {
    if ("cancelled" in answer && !("frame" in answer)) {
      const body = { error: { code: "stream_cancelled", message: "a consumer cancelled the stream", details: answer["cancelled"] } };
      this.fail(errorFromResponse(409, JSON.stringify(body), null));
      return;
    }
    const waiter = this.waiters.shift();
    if (!waiter) return;
    if ("error" in answer) {
      const status = typeof answer["status"] === "number" ? answer["status"] : 400;
      waiter.reject(errorFromResponse(status, JSON.stringify({ error: answer["error"] }), null));
    } else {
      waiter.resolve(answer);
    }
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }
}

function closeError(code: number, reason: string): AgentbusError {
  if (code >= 4000 && code < 5000) {
    return errorFromResponse(code - 4000, JSON.stringify({ error: { code: reason, message: reason, details: null } }), null);
  }
  return new ConnectionError(`the WebSocket closed (${code} ${reason})`);
}
