/**
 * Every error the SDK raises, in one hierarchy.
 *
 *     AgentbusError                 code, status, details, retriable
 *     ├── BadRequestError           400
 *     ├── AuthenticationError       401
 *     ├── PermissionDeniedError     403
 *     ├── NotFoundError             404
 *     ├── MethodNotAllowedError     405
 *     ├── ConflictError             409
 *     ├── TooLargeError             413
 *     ├── UnsupportedMediaTypeError 415
 *     ├── UnprocessableError        422
 *     ├── RateLimitError            429   retriable (after Retry-After)
 *     ├── InternalServerError       500 and other statuses
 *     ├── UnavailableError          502, 503 retriable
 *     ├── TimeoutError              504   retriable
 *     └── ConnectionError           no answer (refused, reset, timed out): status 0, retriable
 *
 * `code` is the bus's stable code (docs/errors.md): switch on it, not on the message.
 */

export interface ErrorInit {
  code: string;
  message: string;
  status: number;
  details?: unknown;
  retryAfterMs?: number | undefined;
}

export const RETRIABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export class AgentbusError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  /** How long the server asked to wait (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;

  constructor(init: ErrorInit) {
    super(init.message);
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status;
    this.details = init.details ?? null;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** Whether the same request may succeed later: the retry policy reads this flag. */
  get retriable(): boolean {
    return RETRIABLE_STATUSES.has(this.status);
  }
}

export class BadRequestError extends AgentbusError {}
export class AuthenticationError extends AgentbusError {}
export class PermissionDeniedError extends AgentbusError {}
export class NotFoundError extends AgentbusError {}
export class MethodNotAllowedError extends AgentbusError {}
export class ConflictError extends AgentbusError {}
export class TooLargeError extends AgentbusError {}
export class UnsupportedMediaTypeError extends AgentbusError {}
export class UnprocessableError extends AgentbusError {}
export class RateLimitError extends AgentbusError {}
export class InternalServerError extends AgentbusError {}
export class UnavailableError extends AgentbusError {}
export class TimeoutError extends AgentbusError {}

/** No answer came: the connection failed, or the request timed out on the client. */
export class ConnectionError extends AgentbusError {
  constructor(message: string, override readonly cause?: unknown) {
    super({ code: "connection_error", message, status: 0 });
  }
  override get retriable(): boolean {
    return true;
  }
}

type ErrorClass = new (init: ErrorInit) => AgentbusError;

const BY_STATUS: ReadonlyMap<number, ErrorClass> = new Map<number, ErrorClass>([
  [400, BadRequestError],
  [401, AuthenticationError],
  [403, PermissionDeniedError],
  [404, NotFoundError],
  [405, MethodNotAllowedError],
  [409, ConflictError],
  [413, TooLargeError],
  [415, UnsupportedMediaTypeError],
  [422, UnprocessableError],
  [429, RateLimitError],
  [502, UnavailableError],
  [503, UnavailableError],
  [504, TimeoutError],
]);

/** The error for a non-2xx answer; body is its text (a bus error body, or anything). */
export function errorFromResponse(status: number, bodyText: string, retryAfter: string | null): AgentbusError {
  const parsed = parseErrorBody(bodyText);
  const init: ErrorInit = {
    code: parsed?.code ?? `http_${status}`,
    message: parsed?.message ?? (bodyText.slice(0, 200) || `HTTP ${status}`),
    status,
    details: parsed?.details ?? null,
    retryAfterMs: parseRetryAfter(retryAfter),
  };
  const Class = BY_STATUS.get(status) ?? InternalServerError;
  return new Class(init);
}

function parseErrorBody(text: string): { code: string; message: string; details: unknown } | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
    const error: unknown = body.error;
    if (typeof error !== "object" || error === null || !("code" in error) || typeof error.code !== "string") {
      return undefined;
    }
    const message = "message" in error && typeof error.message === "string" ? error.message : error.code;
    return { code: error.code, message, details: "details" in error ? error.details : null };
  } catch {
    return undefined;
  }
}

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
