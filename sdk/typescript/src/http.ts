/**
 * The HTTP layer: base URLs with failover, the API key, timeouts, retries and tracing.
 *
 * A request goes to the current base URL; when no answer comes (refused, reset, timed
 * out) the next base URL is tried. Retriable answers (429, 502, 503, 504: e.g. an owner
 * moving during a rebalance) and lost connections are retried with exponential backoff
 * and full jitter, never sooner than Retry-After. Anything else is raised at once as a
 * typed AgentbusError. Only fetch is used, so this part runs in browsers too.
 */
import { AgentbusError, ConnectionError, errorFromResponse } from "./errors.js";
import { traceHeaders } from "./tracing.js";

export type Fetch = (input: string, init: RequestInit) => Promise<Response>;
export type QueryValue = string | number | boolean;
/** A list value repeats the parameter (`path=a&path=b`), in order; undefined and null are left out. */
export type Query = Record<string, QueryValue | readonly QueryValue[] | undefined | null>;

export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  maxAttempts?: number;
  /** First backoff (default 200 ms); doubles per attempt, capped by maxDelayMs. */
  baseDelayMs?: number;
  /** Cap of one backoff (default 5000 ms). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** One or more workers of the fleet; any worker answers any request. */
  urls: string | readonly string[];
  apiKey: string;
  /** Defaults for names given without namespace/tenant. */
  namespace?: string;
  tenant?: string;
  /** Per-attempt timeout of ordinary requests (default 35 s); long waits add their wait. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Injected fetch (tests, custom agents); default: globalThis.fetch. */
  fetch?: Fetch;
  /** Injected sleep (tests); default: setTimeout. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Overrides the client's per-attempt timeout (e.g. for a long poll). */
  timeoutMs?: number | undefined;
  /** An event stream: no timeout once the answer started, accept text/event-stream. */
  stream?: boolean;
  /** Non-2xx statuses that are answers (returned, neither raised nor retried), e.g. /readyz's 503. */
  answerStatuses?: readonly number[];
}

export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

const DEFAULT_TIMEOUT_MS = 35_000;

export class HttpClient {
  readonly urls: readonly string[];
  private current = 0;
  private readonly fetchImpl: Fetch;
  private readonly sleepImpl: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly retry: Required<RetryOptions>;

  constructor(readonly options: ClientOptions) {
    const urls = typeof options.urls === "string" ? [options.urls] : [...options.urls];
    if (urls.length === 0) throw new TypeError("give at least one base URL");
    this.urls = urls.map((u) => u.replace(/\/+$/, ""));
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.sleepImpl = options.sleep ?? sleep;
    this.retry = { maxAttempts: 8, baseDelayMs: 200, maxDelayMs: 5000, ...options.retry };
  }

  /** The base URL requests go to now (it moves on after a failed connection). */
  get baseUrl(): string {
    return this.urls[this.current] as string;
  }

  /** Sends with retries; the parsed JSON (or text) of a 2xx answer (or of answerStatuses), else throws. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<Answer<T>> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    const body = (type.includes("json") && text !== "" ? JSON.parse(text) : text) as T;
    return { status: response.status, body, headers: response.headers };
  }

  /** Sends with retries; the open 2xx Response (its body not read yet), else throws. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    let lastError: AgentbusError | undefined;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      if (attempt > 1) await this.sleepImpl(this.backoffMs(attempt, lastError), options.signal);
      try {
        return await this.attempt(method, path, options);
      } catch (error) {
        if (!(error instanceof AgentbusError) || !error.retriable) throw error;
        if (options.signal?.aborted) throw error;
        lastError = error;
      }
    }
    throw lastError as AgentbusError;
  }

  private async attempt(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = this.baseUrl + path + queryString(options.query);
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const signal = options.signal ? anySignal([options.signal, timeout.signal]) : timeout.signal;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method, headers: this.headersFor(options), body: bodyOf(options), signal });
    } catch (error) {
      clearTimeout(timer);
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      this.current = (this.current + 1) % this.urls.length; // no answer: try the next worker
      throw new ConnectionError(`${method} ${url}: ${describe(error)}`, error);
    }
    if (!options.stream) {
      // an ordinary answer is read by the caller right away, under the same timeout
      response = await readWithin(response, timer);
    } else {
      clearTimeout(timer);
    }
    if ((response.status >= 200 && response.status < 300) || options.answerStatuses?.includes(response.status)) return response;
    const text = await response.text().catch(() => "");
    throw errorFromResponse(response.status, text, response.headers.get("retry-after"));
  }

  private headersFor(options: RequestOptions): Record<string, string> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.apiKey}`,
      ...this.options.headers,
      ...traceHeaders(),
      ...options.headers,
    };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (options.stream) headers["accept"] = "text/event-stream";
    return headers;
  }

  /** Exponential backoff with full jitter, at least what Retry-After asked for. */
  backoffMs(attempt: number, error: AgentbusError | undefined): number {
    const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 2));
    const jittered = Math.random() * cap;
    return Math.max(jittered, error?.retryAfterMs ?? 0);
  }
}

function bodyOf(options: RequestOptions): string | undefined {
  return options.body === undefined ? undefined : JSON.stringify(options.body);
}

async function readWithin(response: Response, timer: ReturnType<typeof setTimeout>): Promise<Response> {
  try {
    const bytes = await response.arrayBuffer();
    return new Response(bytes.byteLength === 0 && response.status === 204 ? null : bytes, {
      status: response.status,
      headers: response.headers,
    });
  } catch (error) {
    throw new ConnectionError(`reading the answer failed: ${describe(error)}`, error);
  } finally {
    clearTimeout(timer);
  }
}

export function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const one of isList(value) ? value : [value]) params.append(name, String(one));
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

function isList(value: QueryValue | readonly QueryValue[]): value is readonly QueryValue[] {
  return Array.isArray(value);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A signal that aborts when any of the given ones does (AbortSignal.any is Node 20.3+). */
export function anySignal(signals: readonly AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
