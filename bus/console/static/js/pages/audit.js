// Audit: search the trail by tenant, actor (key id), action and time.
import { get, qs } from "../api.js";
import { badge, field, h, notice, replace, section, table, time } from "../dom.js";

export async function render(main, _params, ctx) {
  const status = notice();
  const tenant = h("input", { id: "audit-tenant", placeholder: "namespace/tenant", value: ctx.tenant ? `${ctx.tenant.namespace}/${ctx.tenant.tenant}` : "" });
  if (!ctx.me.admin) {
    tenant.value = `${ctx.me.namespace}/${ctx.me.tenant}`;
    tenant.disabled = true;
  }
  const actor = h("input", { id: "audit-actor", placeholder: "key id" });
  const action = h("input", { id: "audit-action", placeholder: "e.g. topics.delete_topic" });
  const since = h("input", { id: "audit-since", type: "datetime-local", step: 1 });
  const until = h("input", { id: "audit-until", type: "datetime-local", step: 1 });
  const limit = h("input", { id: "audit-limit", type: "number", min: 1, max: 1000, value: 100 });
  const out = h("div", { id: "audit-results" });
  const search = async () => {
    const [namespace, tenantName] = tenant.value.includes("/") ? tenant.value.split("/") : [tenant.value, ""];
    const params = { namespace, tenant: tenantName, key_id: actor.value.trim(), action: action.value.trim(), limit: limit.value };
    if (since.value) params.since = new Date(since.value).getTime();
    if (until.value) params.until = new Date(until.value).getTime();
    try {
      const found = await get(`/v1/audit${qs(params)}`, { signal: ctx.signal });
      replace(
        out,
        h("p", { class: "muted" }, `${found.records.length} record(s), ${found.scanned} scanned${found.truncated ? " (stopped early: narrow the time)" : ""}`),
        h(
          "div",
          { class: "scroll" },
          table(
            ["When", "Action", "Outcome", "Status", "Actor", "Tenant", "Request"],
            found.records
              .slice()
              .reverse()
              .map((r) =>
                h(
                  "tr",
                  {},
                  h("td", {}, time(r.at)),
                  h("td", {}, h("code", {}, r.action)),
                  h("td", {}, badge(r.outcome, r.outcome === "ok" ? "ok" : "denied")),
                  h("td", {}, `${r.status}${r.code ? ` ${r.code}` : ""}`),
                  h("td", {}, r.key_id || h("span", { class: "muted" }, "none")),
                  h("td", {}, r.namespace ? `${r.namespace}/${r.tenant || ""}` : ""),
                  h("td", {}, h("code", {}, `${r.method} ${r.path}`)),
                ),
              ),
            { id: "audit-table" },
          ),
        ),
      );
    } catch (err) {
      status.error(err);
    }
  };
  replace(
    main,
    h("h1", {}, "Audit"),
    h(
      "form",
      { class: "card toolbar", onsubmit: (e) => { e.preventDefault(); search(); } },
      field("Tenant", tenant),
      field("Actor", actor),
      field("Action", action),
      field("Since", since),
      field("Until", until),
      field("Limit", limit),
      h("button", { type: "submit", class: "primary", id: "audit-search" }, "Search"),
    ),
    status,
    section("Newest first", out),
  );
  await search();
}
