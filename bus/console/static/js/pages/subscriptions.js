// Subscriptions: lag per partition with a chart over the last minutes, in flight, oldest
// unacked age; seek; dead letters with their origin and redrive of one or many.
import { follow, get, post, qs, watch } from "../api.js";
import { badge, button, duration, field, h, json, notice, replace, section, table, time } from "../dom.js";
import { can } from "../scope.js";

const WINDOW_MS = 5 * 60 * 1000; // the chart's span
const COLORS = ["#1f4e79", "#c62828", "#1a7f37", "#9a6700", "#7a4fb5", "#0b63b6", "#b5487a", "#555"];

export async function render(main, params, ctx) {
  if (params.length >= 3) return detail(main, params[0], params[1], params[2], ctx);
  const subs = (await get(`/v1/subscriptions${qs(ctx.tenant || {})}`, { signal: ctx.signal })).subscriptions.filter((s) =>
    ctx.scope().some((t) => t.namespace === s.namespace && t.tenant === s.tenant),
  );
  replace(
    main,
    h("h1", {}, "Subscriptions"),
    section(
      "Subscriptions",
      h(
        "div",
        { class: "scroll" },
        table(
          ["Subscription", "Topic", "Ack", "Deadline", "Max deliveries", "Dead-letter topic"],
          subs.length
            ? subs.map((s) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("a", { href: `#/subscriptions/${s.namespace}/${s.tenant}/${s.id}` }, `${s.namespace}/${s.tenant}/${s.id}`)),
                  h("td", {}, s.topic),
                  h("td", {}, s.ack_mode),
                  h("td", {}, duration(s.ack_deadline_ms)),
                  h("td", {}, String(s.max_deliveries)),
                  h("td", {}, s.dead_letter_topic),
                ),
              )
            : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No subscriptions.")),
          { id: "subscriptions" },
        ),
      ),
    ),
  );
}

async function detail(main, namespace, tenant, id, ctx) {
  const path = `/v1/subscriptions/${namespace}/${tenant}/${id}`;
  const sub = await get(path, { signal: ctx.signal });
  const topicName = sub.topic.split("/").pop();
  const dlqName = (sub.dead_letter_topic || `${id}-dlq`).split("/").pop();
  const status = notice();
  const lagBox = h("div", { id: "lag" }, h("p", { class: "muted" }, "…"));
  const chart = h("div", { id: "lag-chart" });
  const samples = []; // {at, partitions: {p: lag}}
  replace(
    main,
    h("h1", {}, h("a", { href: "#/subscriptions" }, "Subscriptions"), " / ", `${namespace}/${tenant}/${id}`),
    status,
    section(
      "Subscription",
      h("p", {}, "Topic ", h("a", { href: `#/topics/${namespace}/${tenant}/${topicName}` }, sub.topic), ` · ${sub.ack_mode} ack · deadline ${duration(sub.ack_deadline_ms)} · ${sub.max_deliveries} deliveries · dead letters to ${dlqName}`),
      sub.filter ? h("p", {}, "Filter: ", json(sub.filter)) : null,
    ),
    section("Lag", lagBox, h("h3", {}, "Lag over the last 5 minutes"), chart),
    can(ctx.me, "manage", namespace, tenant, topicName) ? seekForm(path, status) : null,
    deadLetters(path, namespace, tenant, dlqName, topicName, ctx, status),
  );
  watch(
    [`${path}/lag`],
    2000,
    ([result]) => {
      if (result.status !== 200) {
        replace(lagBox, h("p", { class: "notice error" }, `${result.body && result.body.error ? result.body.error.code : result.status}`));
        return;
      }
      const lag = result.body;
      const now = Date.now();
      samples.push({ at: now, partitions: Object.fromEntries(lag.partitions.map((p) => [p.partition, p.lag])), total: lag.total_lag });
      while (samples.length && samples[0].at < now - WINDOW_MS) samples.shift();
      replace(
        lagBox,
        h(
          "div",
          { class: "stats" },
          stat(lag.total_lag, "total lag"),
          stat(lag.unacked, "unacked"),
          stat(lag.in_flight, "in flight"),
          stat(lag.oldest_unacked_age_ms === null ? "–" : duration(lag.oldest_unacked_age_ms), "oldest unacked"),
        ),
        h(
          "div",
          { class: "scroll" },
          table(
            ["Partition", "Committed", "High watermark", "Lag", "Acked ahead"],
            lag.partitions.map((p) =>
              h("tr", { dataset: { partition: p.partition } }, [p.partition, p.committed, p.high_watermark, p.lag, p.acked_ahead].map((v) => h("td", {}, String(v)))),
            ),
            { id: "lag-table" },
          ),
        ),
        h("p", { class: "muted" }, `Run by ${lag.owner}`),
      );
      replace(chart, lagChart(samples, now));
    },
    { signal: ctx.signal },
  );
}

function stat(value, label) {
  return h("div", { class: "stat" }, h("b", {}, String(value)), h("span", {}, label));
}

function lagChart(samples, now) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 600 140");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const partitions = [...new Set(samples.flatMap((s) => Object.keys(s.partitions)))];
  const max = Math.max(1, ...samples.map((s) => s.total));
  svg.setAttribute("aria-label", `Lag over the last 5 minutes, at most ${max}`);
  const x = (at) => 600 - ((now - at) / WINDOW_MS) * 600;
  const y = (v) => 135 - (v / max) * 125;
  const line = (values, color, width) => {
    const poly = document.createElementNS(ns, "polyline");
    poly.setAttribute("points", values.map(([at, v]) => `${x(at).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    poly.setAttribute("stroke", color);
    poly.setAttribute("stroke-width", width);
    svg.append(poly);
  };
  line(samples.map((s) => [s.at, s.total]), "#111", "2.5");
  partitions.forEach((p, i) => line(samples.map((s) => [s.at, s.partitions[p] || 0]), COLORS[i % COLORS.length], "1.2"));
  return h(
    "div",
    {},
    svg,
    h(
      "div",
      { class: "legend" },
      h("span", {}, `max ${max}`),
      h("span", { style: null }, "— total"),
      partitions.map((p, i) => h("span", { class: `legend-${i % COLORS.length}` }, `p${p}`)),
    ),
  );
}

function seekForm(path, status) {
  const how = h("select", { id: "seek-how" }, ["earliest", "latest", "time", "offsets"].map((v) => h("option", { value: v }, v)));
  const when = h("input", { id: "seek-time", type: "datetime-local", step: 1 });
  const offsets = h("input", { id: "seek-offsets", placeholder: "0:120, 2:0" });
  return section(
    "Seek",
    h(
      "form",
      {
        class: "toolbar",
        onsubmit: async (e) => {
          e.preventDefault();
          let body;
          if (how.value === "time") body = { timestamp_ms: new Date(when.value).getTime() };
          else if (how.value === "offsets") {
            body = { offsets: {} };
            for (const pair of offsets.value.split(",").map((s) => s.trim()).filter(Boolean)) {
              const [p, o] = pair.split(":");
              body.offsets[p.trim()] = Number(o);
            }
          } else body = { position: how.value };
          if (!confirm("Seek the subscription? Everything in flight is dropped.")) return;
          try {
            const answer = await post(`${path}/seek`, body);
            status.show(`Moved: ${Object.entries(answer.committed).map(([p, o]) => `p${p}→${o}`).join(", ")}`, "ok");
          } catch (err) {
            status.error(err);
          }
        },
      },
      field("To", how),
      field("Time", when),
      field("Offsets (partition:offset)", offsets),
      h("button", { type: "submit", id: "seek-go" }, "Seek"),
    ),
  );
}

function deadLetters(path, namespace, tenant, dlqName, topicName, ctx, status) {
  const box = h("div", { id: "dead-letters" }, h("p", { class: "muted" }, "…"));
  const mayRedrive = can(ctx.me, "write", namespace, tenant, topicName);
  const selected = new Set();
  const redrive = async (body) => {
    try {
      const answer = await post(`${path}/dead-letters/redrive`, body);
      status.show(`Redriven: ${answer.redriven.length}${answer.skipped.length ? `, skipped (already redriven): ${answer.skipped.join(", ")}` : ""}`, "ok");
      selected.clear();
      await load();
    } catch (err) {
      status.error(err);
    }
  };
  const load = async () => {
    const letters = (await get(`${path}/dead-letters?limit=1000`, { signal: ctx.signal })).dead_letters;
    replace(
      box,
      mayRedrive
        ? h(
            "div",
            { class: "toolbar" },
            button("Redrive selected", () => redrive({ dead_letter_ids: [...selected] }), { id: "redrive-selected" }),
            button("Redrive all", () => confirm("Redrive every dead letter not redriven yet?") && redrive({ all: true }), { id: "redrive-all" }),
          )
        : null,
      letters.length
        ? h(
            "div",
            { class: "scroll" },
            table(
              ["", "Id", "Origin", "Reason", "Deliveries", "Last delivery", "Record"],
              letters.map((d) =>
                h(
                  "tr",
                  { dataset: { deadLetter: d.dead_letter_id } },
                  h(
                    "td",
                    {},
                    mayRedrive && !d.redriven
                      ? h("input", {
                          type: "checkbox",
                          "aria-label": `Select ${d.dead_letter_id}`,
                          checked: selected.has(d.dead_letter_id),
                          onchange: (e) => (e.target.checked ? selected.add(d.dead_letter_id) : selected.delete(d.dead_letter_id)),
                        })
                      : null,
                  ),
                  h("td", {}, h("code", {}, d.dead_letter_id), d.redriven ? h("div", {}, badge("redriven", "ok")) : null),
                  h("td", {}, `${d.origin.topic} p${d.origin.partition} @ ${d.origin.offset}`),
                  h("td", {}, d.origin.reason),
                  h("td", {}, String(d.origin.delivery_count)),
                  h("td", {}, time(d.origin.last_delivery_at)),
                  h(
                    "td",
                    {},
                    json(d.record.payload),
                    h("details", {}, h("summary", {}, "origin headers"), json(Object.fromEntries(Object.entries(d.record.headers || {}).filter(([k]) => k.startsWith("bus.dlq."))))),
                    mayRedrive && !d.redriven ? button("Redrive", () => redrive({ dead_letter_ids: [d.dead_letter_id] }), { class: "redrive-one" }) : null,
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No dead letters."),
    );
  };
  load().catch((err) => status.error(err));
  // New dead letters arrive on the dead-letter topic: follow it and reload when one comes.
  if (can(ctx.me, "read", namespace, tenant, dlqName)) {
    let pending = null;
    follow(`/v1/subscribe/${namespace}/${tenant}/${dlqName}?from=latest`, {
      signal: ctx.signal,
      onEvent: (e) => {
        if (e.event !== "record" || pending) return;
        pending = setTimeout(() => {
          pending = null;
          load().catch((err) => status.error(err));
        }, 300);
      },
    });
  }
  return section("Dead letters", box);
}
