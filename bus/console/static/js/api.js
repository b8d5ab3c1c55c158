// The bus's HTTP API from the browser. The key lives in this tab's sessionStorage only
// and travels in the Authorization header: never in a URL, never logged.
// Live updates are Server-Sent Events read with fetch streaming (EventSource cannot send
// an Authorization header).

const STORE = "agentbus.key";

export const session = {
  get key() {
    return sessionStorage.getItem(STORE);
  },
  set(key) {
    sessionStorage.setItem(STORE, key);
  },
  clear() {
    sessionStorage.removeItem(STORE);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.details = error.details;
  }
}

function headers(extra) {
  const all = { Accept: "application/json", ...(extra || {}) };
  if (session.key) all.Authorization = `Bearer ${session.key}`;
  return all;
}

export async function api(method, path, body, options) {
  const init = { method, headers: headers(), signal: options && options.signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let answer = await fetch(path, init);
  // A rebalance answers 503 (owner_moved, not_ready) for a moment: a read asks again.
  for (let attempt = 1; answer.status === 503 && method === "GET" && attempt <= 4; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
    answer = await fetch(path, init);
  }
  const text = await answer.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!answer.ok) {
    const err = new ApiError(answer.status, parsed);
    if (answer.status === 401) window.dispatchEvent(new CustomEvent("agentbus:signed-out"));
    throw err;
  }
  return parsed;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body === undefined ? {} : body, options);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Follow an SSE endpoint. onEvent({event, id, data}) gets every event, data parsed as JSON
// when it is JSON. Reconnects after a dropped connection (with the last id as
// Last-Event-ID when resume is set); gives up on a 4xx. Returns {close()}.
export function follow(path, { onEvent, onError, onOpen, resume = true, lastEventId, signal } = {}) {
  const control = new AbortController();
  let lastId = lastEventId || null;
  let closed = false;
  let delay = 500;
  const close = () => {
    closed = true;
    control.abort();
  };
  if (signal) signal.addEventListener("abort", close);

  async function once() {
    const extra = { Accept: "text/event-stream" };
    if (resume && lastId) extra["Last-Event-ID"] = lastId;
    const answer = await fetch(path, { headers: headers(extra), signal: control.signal });
    if (!answer.ok) {
      let body = null;
      try {
        body = await answer.json();
      } catch {
        body = null;
      }
      throw new ApiError(answer.status, body);
    }
    delay = 500;
    if (onOpen) onOpen();
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { event: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (event.data.length) {
            const raw = event.data.join("\n");
            let data = raw;
            try {
              data = JSON.parse(raw);
            } catch {
              data = raw;
            }
            if (event.id !== null) lastId = event.id;
            onEvent({ event: event.event, id: event.id, data });
          }
          event = { event: "message", data: [], id: null };
        } else if (line.startsWith(":")) {
          continue;
        } else {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "data") event.data.push(value);
          else if (name === "event") event.event = value;
          else if (name === "id") event.id = value;
        }
      }
    }
  }

  (async () => {
    while (!closed) {
      try {
        await once();
        if (!resume) return; // the server ended the stream: done
      } catch (err) {
        if (closed || (err && err.name === "AbortError")) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          if (onError) onError(err);
          return;
        }
        if (onError) onError(err);
      }
      if (closed) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
  return { close };
}

// GETs of the API that the worker reads again every intervalMs and pushes as one SSE
// `snapshot` event whenever an answer changed: for what has no event stream of its own
// (lag, the fleet's counters, pending approvals). onSnapshot(results) gets
// [{path, status, body}] in the order of paths.
export function watch(paths, intervalMs, onSnapshot, options) {
  const q = new URLSearchParams();
  for (const p of paths) q.append("path", p);
  q.set("interval_ms", String(intervalMs));
  return follow(`/v1/watch?${q}`, {
    ...(options || {}),
    resume: true,
    onEvent: (e) => {
      if (e.event === "snapshot") onSnapshot(e.data.results);
    },
  });
}
