// Agents: a board with live liveness (the tenants' agent-events topics, read as SSE),
// capabilities and their schemas, the A2A card, inbox depth and usage.
import { follow, get, put, qs, watch } from "../api.js";
import { badge, kv, duration, h, json, notice, replace, section, table, time } from "../dom.js";
import { can } from "../scope.js";

const MAX_FOLLOWED = 4; // tenants whose agent-events one page follows (browsers allow ~6 connections)

export async function render(main, params, ctx) {
  if (params.length >= 3) return detail(main, params[0], params[1], params[2], ctx);
  return board(main, ctx);
}

function usageText(u) {
  if (!u || !u.reports) return "no usage";
  return `${u.input_tokens} in / ${u.output_tokens} out tokens · ${u.cost.toFixed(4)} cost`;
}

async function board(main, ctx) {
  const grid = h("div", { class: "board", id: "agents" });
  const note = h("p", { class: "muted" });
  const cards = new Map();
  replace(main, h("h1", {}, "Agents"), note, grid);
  const draw = (agents) => {
    cards.clear();
    replace(
      grid,
      agents.length ? null : h("p", { class: "muted" }, "No agents."),
      agents.map((a) => {
        const live = h("span", { class: "liveness" }, badge(a.liveness, a.liveness));
        const since = h("span", { class: "muted" }, a.liveness_since ? ` since ${time(a.liveness_since)}` : "");
        const card = h(
          "div",
          { class: "agent", dataset: { agent: `${a.namespace}/${a.tenant}/${a.id}`, liveness: a.liveness } },
          h("h2", {}, h("a", { href: `#/agents/${a.namespace}/${a.tenant}/${a.id}` }, a.display_name || a.id)),
          h("div", { class: "muted mono" }, `${a.namespace}/${a.tenant}/${a.id}`),
          h("div", {}, live, since),
          h("div", {}, badge(a.state, a.state === "enabled" ? "ok" : "warn"), ` beats every ${duration(a.heartbeat_interval_ms)}`),
          h("div", {}, `${a.capabilities.length} tool(s): `, a.capabilities.map((c) => h("code", {}, `${c.name} `))),
          h("div", { class: "muted" }, usageText(a.usage)),
          a.status ? h("div", { class: "muted" }, `“${a.status}”`) : null,
        );
        cards.set(`${a.namespace}/${a.tenant}/${a.id}`, { card, live, since });
        return card;
      }),
    );
  };
  let shown = [];
  const load = async () => {
    const agents = (await get(`/v1/agents${qs(ctx.tenant || {})}`, { signal: ctx.signal })).agents;
    shown = agents.filter((a) => ctx.scope().some((t) => t.namespace === a.namespace && t.tenant === a.tenant));
    draw(shown);
  };
  await load();
  // A tenant's agent-events topic exists once it registered an agent: follow those tenants.
  const followed = ctx
    .scope()
    .filter((t) => shown.some((a) => a.namespace === t.namespace && a.tenant === t.tenant))
    .filter((t) => can(ctx.me, "read", t.namespace, t.tenant, "agent-events"));
  note.textContent =
    followed.length > MAX_FOLLOWED
      ? `Live liveness for the first ${MAX_FOLLOWED} tenants; pick a tenant for live updates of the others.`
      : "Liveness changes appear as they happen (agent-events).";
  let reload = null;
  for (const t of followed.slice(0, MAX_FOLLOWED)) {
    follow(`/v1/subscribe/${t.namespace}/${t.tenant}/agent-events?from=latest`, {
      signal: ctx.signal,
      onEvent: (e) => {
        if (e.event !== "record") return;
        const ev = e.data.payload;
        const found = cards.get(ev.agent);
        if (ev.type === "agent.liveness" && found) {
          replace(found.live, badge(ev.to, ev.to));
          found.since.textContent = ` since ${time(ev.at)}`;
          found.card.dataset.liveness = ev.to;
          found.card.classList.add("flash");
          setTimeout(() => found.card.classList.remove("flash"), 800);
        } else if (!reload) {
          reload = setTimeout(() => {
            reload = null;
            load().catch(() => {});
          }, 300);
        }
      },
    });
  }
}

async function detail(main, namespace, tenant, id, ctx) {
  const path = `/v1/agents/${namespace}/${tenant}/${id}`;
  const agent = await get(path, { signal: ctx.signal });
  const status = notice();
  const inboxBox = h("div", { id: "inbox-depth" }, h("p", { class: "muted" }, "…"));
  const stateBox = h("div");
  const showState = (a) =>
    replace(
      stateBox,
      badge(a.state, a.state === "enabled" ? "ok" : "warn"),
      " ",
      can(ctx.me, "manage", namespace, tenant)
        ? ["enabled", "draining", "disabled"]
            .filter((s) => s !== a.state)
            .map((s) =>
              h(
                "button",
                {
                  type: "button",
                  onclick: async () => {
                    try {
                      showState(await put(`${path}/state`, { state: s, reason: "from the console" }));
                      status.show(`State: ${s}`, "ok");
                    } catch (err) {
                      status.error(err);
                    }
                  },
                },
                `Set ${s}`,
              ),
            )
        : null,
    );
  showState(agent);
  replace(
    main,
    h("h1", {}, h("a", { href: "#/agents" }, "Agents"), " / ", `${namespace}/${tenant}/${id}`),
    status,
    section(
      agent.display_name || id,
      kv(
        [
          ["Liveness", h("span", {}, badge(agent.liveness, agent.liveness), agent.liveness_since ? ` since ${time(agent.liveness_since)}` : "")],
          ["Last heartbeat", time(agent.last_heartbeat_at)],
          ["Operator state", stateBox],
          ["Description", agent.description],
          ["Usage", usageText(agent.usage)],
          ["Labels", Object.entries(agent.labels).map(([k, v]) => badge(`${k}=${v}`))],
          ["Registered", time(agent.created_at)],
        ],
      ),
    ),
    section("Inbox", inboxBox),
    section(
      "Capabilities",
      agent.capabilities.length
        ? agent.capabilities.map((c) =>
            h(
              "div",
              { class: "card" },
              h("h3", {}, h("code", {}, c.name), c.requires_approval ? [" ", badge("requires approval", "warn")] : null),
              h("p", {}, c.description),
              h("div", { class: "pair" }, h("div", {}, h("b", {}, "Input schema"), json(c.input_schema)), h("div", {}, h("b", {}, "Output schema"), c.output_schema ? json(c.output_schema) : h("p", { class: "muted" }, "any"))),
            ),
          )
        : h("p", { class: "muted" }, "None."),
    ),
    section("A2A agent card", json(agent.card)),
  );
  if (can(ctx.me, "read", namespace, tenant, "inbox")) {
    watch(
      [`${path}/inbox/lag`],
      3000,
      ([r]) => {
        if (r.status !== 200) return replace(inboxBox, h("p", { class: "muted" }, `unavailable (${r.status})`));
        replace(
          inboxBox,
          h("div", { class: "stats" }, stat(r.body.unacked, "waiting (depth)"), stat(r.body.in_flight, "in flight"), stat(r.body.oldest_unacked_age_ms === null ? "–" : duration(r.body.oldest_unacked_age_ms), "oldest unacked")),
        );
      },
      { signal: ctx.signal },
    );
  } else {
    replace(inboxBox, h("p", { class: "muted" }, "This key may not read the inbox."));
  }
}

function stat(value, label) {
  return h("div", { class: "stat" }, h("b", {}, String(value)), h("span", {}, label));
}
