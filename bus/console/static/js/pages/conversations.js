// Conversations: the thread view. Messages in sequence order as they arrive (the
// conversation's SSE stream); each tool call paired with its result and nested under its
// parent call; token streams typed in live (announced by a message whose metadata names
// the stream_id, or replayed when their end arrives) and marked complete, cancelled or
// gap; pending approvals inline; usage per conversation and per agent; replay from any
// sequence number or time.
import { follow, get, qs, watch } from "../api.js";
import { badge, duration, field, h, json, notice, replace, section, table, time } from "../dom.js";
import { can } from "../scope.js";
import { approvalCard } from "./approvals.js";

export async function render(main, params, ctx) {
  if (params.length >= 3) return thread(main, params[0], params[1], params[2], ctx);
  const list = (await get(`/v1/conversations${qs(ctx.tenant || {})}`, { signal: ctx.signal })).conversations.filter((c) =>
    ctx.scope().some((t) => t.namespace === c.namespace && t.tenant === c.tenant),
  );
  list.sort((a, b) => String(b.last_activity_at).localeCompare(String(a.last_activity_at)));
  replace(
    main,
    h("h1", {}, "Conversations"),
    section(
      "Conversations",
      h(
        "div",
        { class: "scroll" },
        table(
          ["Conversation", "Title", "State", "Participants", "Messages", "Last activity", "Usage"],
          list.length
            ? list.map((c) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("a", { href: `#/conversations/${c.namespace}/${c.tenant}/${c.id}` }, `${c.namespace}/${c.tenant}/${c.id}`)),
                  h("td", {}, c.title),
                  h("td", {}, badge(c.state, c.state === "active" || c.state === "open" ? "ok" : null)),
                  h("td", {}, c.participants.join(", ") || h("span", { class: "muted" }, "anyone")),
                  h("td", {}, String(c.message_count)),
                  h("td", {}, time(c.last_activity_at)),
                  h("td", {}, usageText(c.usage)),
                ),
              )
            : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No conversations.")),
          { id: "conversations" },
        ),
      ),
    ),
  );
}

function usageText(u) {
  if (!u || !u.reports) return "";
  return `${u.input_tokens}/${u.output_tokens} tokens, ${Number(u.cost).toFixed(4)}`;
}

function chunkText(data) {
  if (typeof data === "string") return data;
  if (data && typeof data.text === "string") return data.text;
  return JSON.stringify(data);
}

async function thread(main, namespace, tenant, id, ctx) {
  const key = `${namespace}/${tenant}/${id}`;
  const conv = await get(`/v1/conversations/${key}`, { signal: ctx.signal });
  const status = notice();
  const info = h("div", { id: "conversation-info" });
  const usageBox = h("div", { id: "conversation-usage" });
  const list = h("div", { class: "thread", id: "thread", "aria-live": "off" });
  const approvalsBox = h("div", { id: "inline-approvals" });
  const fromSeq = h("input", { id: "replay-seq", type: "number", min: 1, value: 1, size: 6 });
  const fromTime = h("input", { id: "replay-time", type: "datetime-local", step: 1 });
  const counter = h("span", { id: "thread-count", class: "muted" });

  const showInfo = (c) =>
    replace(
      info,
      h(
        "p",
        {},
        badge(c.state, c.state === "active" || c.state === "open" ? "ok" : null),
        ` ${c.title || ""} · participants: ${c.participants.join(", ") || "anyone in the tenant"} · ${c.message_count} envelopes · last activity ${time(c.last_activity_at)}`,
      ),
    );
  showInfo(conv);

  let session = null;
  const start = (seq) => {
    if (session) session.stop();
    session = open(ctx, key, seq, list, counter, usageBox, status);
  };
  replace(
    main,
    h("h1", {}, h("a", { href: "#/conversations" }, "Conversations"), " / ", key),
    status,
    section("Conversation", info, usageBox),
    h(
      "form",
      {
        class: "card toolbar",
        onsubmit: async (e) => {
          e.preventDefault();
          if (fromTime.value) {
            const since = new Date(fromTime.value).getTime();
            const page = await get(`/v1/conversations/${key}/messages${qs({ since, limit: 1 })}`);
            if (!page.messages.length) return status.show("Nothing at or after that time.", "error");
            fromSeq.value = page.messages[0].seq;
            fromTime.value = "";
          }
          start(Number(fromSeq.value) || 1);
        },
      },
      field("Replay from sequence number", fromSeq),
      field("or from a time", fromTime),
      h("button", { type: "submit", id: "replay" }, "Replay"),
      counter,
    ),
    list,
    approvalsBox,
  );
  start(1);

  // Pending approvals of this conversation, inline (decided ones show on their call).
  if (can(ctx.me, "read", namespace, tenant)) {
    const cards = new Map();
    watch(
      [`/v1/approvals/${namespace}/${tenant}?state=pending`],
      2000,
      ([r]) => {
        const mine = r.status === 200 ? r.body.approvals.filter((a) => a.conversation === key) : [];
        for (const k of [...cards.keys()]) if (!mine.some((a) => a.approval_id === k)) cards.delete(k);
        replace(
          approvalsBox,
          mine.map((a) => {
            if (!cards.has(a.approval_id)) cards.set(a.approval_id, approvalCard(a, ctx, status));
            return cards.get(a.approval_id);
          }),
        );
      },
      { signal: ctx.signal },
    );
  }
}

// One reading of the thread from seq on: renders envelopes as they come, in batches of
// one animation frame.
function open(ctx, key, seq, list, counter, usageBox, status) {
  const control = new AbortController();
  ctx.signal.addEventListener("abort", () => control.abort());
  replace(list);
  const calls = new Map(); // call_id -> {card, resultSlot, children, call}
  const streams = new Map(); // stream_id -> stream view
  const usage = { total: { input_tokens: 0, output_tokens: 0, cost: 0 }, agents: new Map() };
  let queue = [];
  let scheduled = false;
  let count = 0;
  let first = null;

  const addUsage = (agent, u) => {
    if (!u) return;
    const a = usage.agents.get(agent) || { input_tokens: 0, output_tokens: 0, cost: 0 };
    for (const target of [a, usage.total]) {
      target.input_tokens += u.input_tokens || 0;
      target.output_tokens += u.output_tokens || 0;
      target.cost += u.cost || 0;
    }
    usage.agents.set(agent, a);
  };

  const drawUsage = () =>
    replace(
      usageBox,
      usage.agents.size
        ? table(
            ["Usage", "Input tokens", "Output tokens", "Cost"],
            [
              h("tr", {}, h("th", { scope: "row" }, "conversation"), h("td", {}, String(usage.total.input_tokens)), h("td", {}, String(usage.total.output_tokens)), h("td", {}, usage.total.cost.toFixed(4))),
              [...usage.agents].map(([agent, u]) => h("tr", {}, h("td", {}, agent), h("td", {}, String(u.input_tokens)), h("td", {}, String(u.output_tokens)), h("td", {}, u.cost.toFixed(4)))),
            ],
            { id: "usage-table" },
          )
        : h("p", { class: "muted" }, "No usage reported."),
    );

  const meta = (m, ...extra) =>
    h("div", { class: "meta" }, h("b", {}, `#${m.seq}`), h("span", {}, m.sender), h("span", {}, time(m.sent_at)), extra);

  function streamView(streamId, sender) {
    const text = h("div", { class: "stream-text" });
    const state = h("span", { class: "stream-state" }, badge("live", "live"));
    const card = h("div", { class: "msg stream", dataset: { stream: streamId } }, h("div", { class: "meta" }, h("span", {}, `stream ${streamId}`), sender ? h("span", {}, sender) : null, state), text);
    const view = { card, text, state, ended: false, reading: false };
    const chunks = new Map(); // chunk_seq -> text node, so a late chunk fills its gap
    view.read = () => {
      if (view.reading) return;
      view.reading = true;
      follow(`/v1/streams/${key}/${streamId}?gap_timeout_ms=2000`, {
        signal: control.signal,
        resume: false,
        onEvent: (e) => {
          if (e.event === "chunk") {
            const node = document.createTextNode(chunkText(e.data.data));
            chunks.set(e.data.chunk_seq, node);
            text.append(node);
          } else if (e.event === "gap") {
            const gap = h("span", { class: "gap", dataset: { from: e.data.from_chunk_seq, to: e.data.to_chunk_seq } }, `[gap ${e.data.from_chunk_seq}–${e.data.to_chunk_seq}]`);
            text.append(gap);
            replace(state, badge("gap", "gap"));
          } else if (e.event === "late") {
            const gap = [...text.querySelectorAll(".gap")].find((g) => Number(g.dataset.from) <= e.data.chunk_seq && e.data.chunk_seq <= Number(g.dataset.to));
            const node = document.createTextNode(chunkText(e.data.data));
            if (gap) gap.before(node);
            else text.append(node);
          } else if (e.event === "end") {
            view.finish(e.data);
          }
        },
        onError: (err) => status.error(err),
      });
    };
    view.finish = (end) => {
      if (view.ended) return;
      view.ended = true;
      const hadGap = text.querySelector(".gap");
      replace(state, badge(end.status, end.status), hadGap ? [" ", badge("gap", "gap")] : null, end.error ? ` ${end.error}` : "", end.usage ? ` · ${end.usage.output_tokens} tokens` : "");
    };
    return view;
  }

  function render(m) {
    const p = m.payload || {};
    if (m.kind === "tool_call") {
      const resultSlot = h("div", { class: "result" }, badge("pending", "pending"));
      const children = h("div", { class: "children" });
      const card = h(
        "div",
        { class: "msg tool", dataset: { seq: m.seq, call: p.call_id } },
        meta(m, badge("tool call", "live"), h("code", {}, p.tool), h("span", {}, `${p.caller} → ${p.callee}`), p.approval_id ? badge(`approved ${p.approval_id}`, "approved") : null),
        h("div", { class: "pair" }, h("div", {}, h("b", {}, "Arguments"), json(p.arguments)), resultSlot),
        children,
      );
      calls.set(p.call_id, { card, resultSlot, children, call: p });
      const parent = p.parent_call_id && calls.get(p.parent_call_id);
      return parent ? { node: card, into: parent.children } : { node: card };
    }
    if (m.kind === "tool_result" || m.kind === "tool_cancel") {
      const found = calls.get(p.call_id);
      if (m.kind === "tool_result") addUsage(m.sender, p.usage);
      if (found) {
        const took = p.at && found.call.created_at ? duration(p.at - found.call.created_at) : "";
        found.card.dataset.status = p.status;
        replace(
          found.resultSlot,
          h("b", {}, "Result "),
          badge(p.status, p.status),
          took ? ` in ${took}` : "",
          h("span", { class: "muted" }, ` (#${m.seq} by ${p.by === "bus" ? "the bus" : m.sender})`),
          p.error ? json(p.error) : json(p.result),
        );
        return null;
      }
      return { node: h("div", { class: "msg tool", dataset: { seq: m.seq } }, meta(m, badge(m.kind), h("code", {}, p.call_id), badge(p.status, p.status)), json(p)) };
    }
    if (m.kind === "stream_end") {
      addUsage(m.sender, p.usage);
      let view = streams.get(p.stream_id);
      const line = h("div", { class: "muted small", dataset: { seq: m.seq } }, `#${m.seq} stream ${p.stream_id} ended: ${p.status}`);
      if (!view) {
        view = streamView(p.stream_id, m.sender);
        streams.set(p.stream_id, view);
        view.read();
        return { node: h("div", {}, view.card, line) };
      }
      // the reader reports the end once every chunk is in (gaps included)
      return { node: line };
    }
    const card = h("div", { class: "msg", dataset: { seq: m.seq } }, meta(m, m.kind !== "message" ? badge(m.kind) : null), json(m.payload));
    const announced = m.metadata && m.metadata.stream_id;
    if (announced && !streams.has(announced)) {
      const view = streamView(announced, m.sender);
      streams.set(announced, view);
      card.append(view.card);
      view.read();
    }
    return { node: card };
  }

  const flush = () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const fragment = document.createDocumentFragment();
    for (const m of batch) {
      const placed = render(m);
      if (!placed) continue;
      if (placed.into) placed.into.append(placed.node);
      else fragment.append(placed.node);
    }
    list.append(fragment);
    counter.textContent = `${count} envelopes from #${first ?? seq}`;
    list.dataset.count = String(count);
    drawUsage();
  };

  follow(`/v1/conversations/${key}/stream?from_seq=${seq}`, {
    signal: control.signal,
    lastEventId: null,
    onEvent: (e) => {
      if (e.event === "message") {
        count += 1;
        if (first === null) first = e.data.seq;
        queue.push(e.data);
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(flush);
        }
      } else if (e.event === "state") {
        status.show(`The conversation is now ${e.data.state}.`, "ok");
      } else if (e.event === "deleted") {
        status.show("The conversation was deleted.", "error");
      }
    },
    onError: (err) => status.error(err),
  });
  drawUsage();
  return { stop: () => control.abort() };
}
