/**
 * W3C traceparent propagation when @opentelemetry/api is installed (an optional peer
 * dependency): each request carries the active span's context. Without it, nothing.
 */
interface Propagation {
  inject(context: unknown, carrier: Record<string, string>): void;
}
interface OtelApi {
  propagation: Propagation;
  context: { active(): unknown };
}

let otel: OtelApi | undefined;

/** Loads @opentelemetry/api if present; call once at start-up (Agentbus.create does). */
export async function loadTracing(): Promise<boolean> {
  if (otel) return true;
  try {
    const name = "@opentelemetry/api"; // a variable: bundlers must not require it
    otel = (await import(name)) as OtelApi;
    return true;
  } catch {
    return false;
  }
}

/** Use a given OpenTelemetry API object (e.g. in tests, or a bundled copy). */
export function useTracing(api: OtelApi | undefined): void {
  otel = api;
}

/** traceparent (and tracestate) of the active context, or nothing. */
export function traceHeaders(): Record<string, string> {
  if (!otel) return {};
  const carrier: Record<string, string> = {};
  otel.propagation.inject(otel.context.active(), carrier);
  return carrier;
}
