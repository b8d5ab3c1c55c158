/** Loads ../../contract and fakes the server with an injected fetch. */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// test/ when run from sources, build/test/ when compiled: find the repository's contract/
export const CONTRACT = [resolve(here, "../../../contract"), resolve(here, "../../../../contract")].find((p) => {
  try {
    return readdirSync(p).includes("README.md");
  } catch {
    return false;
  }
}) as string;

export function load<T>(name: string): T {
  return JSON.parse(readFileSync(join(CONTRACT, name), "utf8")) as T;
}

export interface FixtureResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  body_text?: string;
}

export interface RequestFixture {
  name: string;
  call: { op: string; args: Record<string, unknown> };
  request: { method: string; path: string; query: Record<string, string | string[]>; headers: Record<string, string>; body?: unknown; websocket?: boolean };
  response: FixtureResponse;
  result: unknown;
  frames_sent?: Record<string, unknown>[];
  frames_received?: Record<string, unknown>[];
}

export interface RequestFile {
  client: { base_url: string; api_key: string; namespace: string; tenant: string };
  fixtures: RequestFixture[];
}

export function requestFiles(): [string, RequestFile][] {
  return readdirSync(join(CONTRACT, "requests"))
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f, load<RequestFile>(join("requests", f))]);
}

export function toResponse(r: FixtureResponse): Response {
  const text = r.body_text ?? (r.body === undefined ? "" : JSON.stringify(r.body));
  return new Response(r.status === 204 ? null : text, { status: r.status, headers: r.headers });
}

export interface Seen {
  url: URL;
  method: string;
  headers: Headers;
  body: unknown;
}

/** A fetch that records what it was asked and answers from a list, in turn. */
export function scriptedFetch(answers: (FixtureResponse | Error)[]): { fetch: (input: string, init: RequestInit) => Promise<Response>; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const text = typeof init.body === "string" ? init.body : undefined;
    seen.push({ url: new URL(input), method: init.method ?? "GET", headers: new Headers(init.headers), body: text === undefined ? undefined : JSON.parse(text) });
    const answer = answers.shift();
    if (answer === undefined) throw new Error(`unexpected request ${init.method} ${input}`);
    if (answer instanceof Error) throw answer;
    return toResponse(answer);
  };
  return { fetch, seen };
}
