// Overview: the fleet's workers, the broker, publish/deliver rates, open approvals,
// dead letters and agents by liveness, kept live by one /v1/watch stream.
import { get, qs, watch } from "../api.js";
import { badge, h, replace, section, table } from "../dom.js";
import { can } from "../scope.js";

const MAX_DLQ = 8;

export async function render(main, _params, ctx) {
  const { me, signal } = ctx;
  const tenants = ctx.scope();
  const stats = h("div", { class: "stats", id: "overview-stats" });
  const workersBox = h("div", { id: "overview-workers" }, h("p", { class: "muted" }, "…"));
  const approvalsBox = h("div", { id: "overview-approvals" });
  const dlqBox = h("div", { id: "overview-dlq" });
  const agentsBox = h("div", { id: "overview-agents" });
  replace(
    main,
    h("h1", {}, "Overview"),
    stats,
    me.admin ? section("Workers", workersBox) : null,
    h("div", { class: "grid" }, section("Agents by liveness", agentsBox), section("Open approvals", approvalsBox), section("Dead letters", dlqBox)),
  );

  const subs = (await get("/v1/subscriptions", { signal })).subscriptions.filter((s) =>
    tenants.some((t) => t.namespace === s.namespace && t.tenant === s.tenant),
  );
  const paths = [];
  const slot = {};
  const add = (name, path) => {
    slot[name] = paths.length;
    paths.push(path);
  };
  if (me.admin) add("workers", "/v1/workers");
  else add("health", "/healthz");
  add("agents", `/v1/agents${qs(ctx.tenant ? ctx.tenant : {})}`);
  const approvalTenants = tenants.filter((t) => can(me, "read", t.namespace, t.tenant)).slice(0, 8);
  approvalTenants.forEach((t, i) => add(`ap${i}`, `/v1/approvals/${t.namespace}/${t.tenant}?state=pending`));
  const dlqSubs = subs.slice(0, MAX_DLQ);
  dlqSubs.forEach((s, i) => add(`dlq${i}`, `/v1/subscriptions/${s.namespace}/${s.tenant}/${s.id}/dead-letters?limit=1000`));

  let previous = null;
  watch(
    paths,
    2000,
    (results) => {
      const at = (name) => results[slot[name]];
      let broker = null;
      let rates = null;
      if (me.admin) {
        const fleet = at("workers").body;
        if (fleet && fleet.workers) {
          broker = fleet.workers.some((w) => w.broker);
          rates = rate(previous, fleet);
          previous = fleet;
          renderWorkers(workersBox, fleet, rates);
        }
      } else {
        broker = at("health").body && at("health").body.broker;
      }
      const agents = (at("agents").body && at("agents").body.agents) || [];
      const byLiveness = { alive: 0, late: 0, dead: 0, unknown: 0 };
      for (const a of agents) byLiveness[a.liveness] = (byLiveness[a.liveness] || 0) + 1;
      const approvals = approvalTenants.flatMap((t, i) => (at(`ap${i}`).body && at(`ap${i}`).body.approvals) || []);
      const dlq = dlqSubs.map((s, i) => {
        const letters = (at(`dlq${i}`).body && at(`dlq${i}`).body.dead_letters) || [];
        return { sub: s, count: letters.filter((d) => !d.redriven).length };
      });
      replace(
        stats,
        stat(broker === null ? "?" : broker ? "reachable" : "unreachable", "broker", broker ? "ok" : "bad"),
        me.admin && previous ? stat(`${previous.workers.filter((w) => w.up).length}/${previous.workers.length}`, "workers up") : null,
        rates ? stat(`${rates.published.toFixed(1)}/s`, "published") : null,
        rates ? stat(`${rates.delivered.toFixed(1)}/s`, "delivered") : null,
        stat(String(approvals.length), "open approvals", approvals.length ? "warn" : null),
        stat(String(dlq.reduce((n, d) => n + d.count, 0)), "dead letters"),
        stat(String(agents.length), "agents"),
      );
      replace(
        agentsBox,
        table(
          ["Liveness", "Agents"],
          Object.entries(byLiveness).map(([k, n]) => h("tr", {}, h("td", {}, badge(k, k)), h("td", {}, String(n)))),
        ),
      );
      replace(
        approvalsBox,
        approvals.length
          ? h("ul", {}, approvals.map((a) => h("li", {}, h("a", { href: "#/approvals" }, `${a.tool || a.kind} by ${a.caller}`), " ", h("span", { class: "muted" }, `${a.namespace}/${a.tenant}`))))
          : h("p", { class: "muted" }, "None pending."),
      );
      replace(
        dlqBox,
        dlq.length
          ? table(
              ["Subscription", "Not redriven"],
              dlq.map((d) =>
                h("tr", {}, h("td", {}, h("a", { href: `#/subscriptions/${d.sub.namespace}/${d.sub.tenant}/${d.sub.id}` }, `${d.sub.namespace}/${d.sub.tenant}/${d.sub.id}`)), h("td", {}, String(d.count))),
              ),
            )
          : h("p", { class: "muted" }, "No subscriptions."),
        subs.length > MAX_DLQ ? h("p", { class: "muted" }, `First ${MAX_DLQ} of ${subs.length} subscriptions; pick a tenant to narrow.`) : null,
      );
    },
    { signal },
  );
}

function stat(value, label, kind) {
  return h("div", { class: ["stat", kind ? `stat-${kind}` : null] }, h("b", {}, value), h("span", {}, label));
}

function rate(before, now) {
  if (!before) return null;
  const sum = (fleet, field) => fleet.workers.reduce((n, w) => n + (w.up ? w[field] : 0), 0);
  const at = (fleet) => Math.max(...fleet.workers.map((w) => w.at || 0));
  const seconds = (at(now) - at(before)) / 1000;
  if (seconds <= 0) return null;
  return {
    published: Math.max(0, (sum(now, "records_published") - sum(before, "records_published")) / seconds),
    delivered: Math.max(0, (sum(now, "records_delivered") - sum(before, "records_delivered")) / seconds),
  };
}

function renderWorkers(box, fleet, rates) {
  replace(
    box,
    h(
      "div",
      { class: "scroll" },
      table(
        ["Worker", "Up", "Ready", "Broker", "State partitions owned", "Published", "Delivered", "SSE clients"],
        fleet.workers.map((w) =>
          h(
            "tr",
            { dataset: { worker: w.url } },
            h("td", {}, h("code", {}, w.url), w.url === fleet.answered_by ? h("span", { class: "muted" }, " (this one)") : null),
            h("td", {}, badge(w.up ? "up" : "down", w.up ? "ok" : "bad")),
            h("td", {}, w.up ? badge(w.ready ? "ready" : "starting", w.ready ? "ok" : "warn") : ""),
            h("td", {}, w.up ? badge(w.broker ? "reachable" : "unreachable", w.broker ? "ok" : "bad") : ""),
            h("td", {}, w.partitions.join(", ") || "none"),
            h("td", {}, String(w.records_published)),
            h("td", {}, String(w.records_delivered)),
            h("td", {}, String(w.sse_clients)),
          ),
        ),
      ),
    ),
    fleet.unowned.length ? h("p", { class: "notice error" }, `Partitions without an owner: ${fleet.unowned.join(", ")}`) : null,
    rates ? h("p", { class: "muted" }, `Fleet: ${rates.published.toFixed(1)} records/s published, ${rates.delivered.toFixed(1)} records/s delivered.`) : null,
  );
}
