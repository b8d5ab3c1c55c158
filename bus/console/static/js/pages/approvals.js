// Approvals inbox: pending approvals with the exact envelope and its digest, time left,
// approve/reject with a reason in one click (quoting the digest shown); decided ones with
// who, when and why. Kept live by /v1/watch (approvals have no event stream of their own).
import { post, watch } from "../api.js";
import { badge, duration, h, json, notice, replace, section, table, time } from "../dom.js";
import { can } from "../scope.js";

export async function render(main, _params, ctx) {
  const tenants = ctx.scope().filter((t) => can(ctx.me, "read", t.namespace, t.tenant)).slice(0, 20);
  const pendingBox = h("div", { id: "approvals-pending" }, h("p", { class: "muted" }, "…"));
  const decidedBox = h("div", { id: "approvals-decided" });
  const status = notice();
  replace(main, h("h1", {}, "Approvals"), status, section("Pending", pendingBox), section("Decided", decidedBox));
  if (!tenants.length) return replace(pendingBox, h("p", { class: "muted" }, "No tenants."));
  const cards = new Map(); // approval id -> card, kept across snapshots so a typed reason survives
  watch(
    tenants.map((t) => `/v1/approvals/${t.namespace}/${t.tenant}`),
    2000,
    (results) => {
      const all = results.flatMap((r) => (r.status === 200 ? r.body.approvals : []));
      const pending = all.filter((a) => a.state === "pending").sort((a, b) => a.expires_at - b.expires_at);
      const decided = all.filter((a) => a.state !== "pending").sort((a, b) => (b.decided_at || 0) - (a.decided_at || 0));
      for (const id of [...cards.keys()]) if (!pending.some((a) => a.approval_id === id)) cards.delete(id);
      replace(
        pendingBox,
        pending.length
          ? pending.map((a) => {
              if (!cards.has(a.approval_id)) cards.set(a.approval_id, approvalCard(a, ctx, status));
              return cards.get(a.approval_id);
            })
          : h("p", { class: "muted" }, "Nothing waits for a decision."),
      );
      replace(
        decidedBox,
        decided.length
          ? h(
              "div",
              { class: "scroll" },
              table(
                ["Approval", "What", "Decision", "By", "When", "Why"],
                decided.slice(0, 200).map((a) =>
                  h(
                    "tr",
                    { dataset: { approval: a.approval_id } },
                    h("td", {}, h("code", {}, a.approval_id)),
                    h("td", {}, what(a)),
                    h("td", {}, badge(a.state, a.state)),
                    h("td", {}, a.decided_by || ""),
                    h("td", {}, time(a.decided_at)),
                    h("td", {}, a.reason || ""),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "None yet."),
      );
    },
    { signal: ctx.signal },
  );
}

function what(a) {
  if (a.kind === "publish") return `publish to ${a.topic}`;
  return h("span", {}, h("code", {}, a.tool), ` ${a.caller} → ${a.callee} in `, h("a", { href: `#/conversations/${a.conversation}` }, a.conversation));
}

// One pending approval: what it would publish, its digest, time left, and the decision.
export function approvalCard(a, ctx, status) {
  const left = h("span", { class: "time-left" });
  const tick = () => {
    const ms = a.expires_at - Date.now();
    left.textContent = ms > 0 ? `${duration(ms)} left` : "expired";
  };
  tick();
  const timer = setInterval(tick, 1000); // a local clock: no request
  ctx.signal.addEventListener("abort", () => clearInterval(timer));
  const reason = h("input", { class: "reason", placeholder: "reason (optional)", "aria-label": "Reason", maxlength: 1024 });
  const out = notice();
  const decide = (verb) => async () => {
    try {
      // The digest quoted is the one shown on this card: the bus refuses the decision if
      // the envelope it would publish is not the one the approver saw.
      const decided = await post(`/v1/approvals/${a.namespace}/${a.tenant}/${a.approval_id}/${verb}`, { digest: a.digest, reason: reason.value });
      out.show(`${decided.state} by ${decided.decided_by}`, "ok");
      if (status) status.show(`${a.approval_id} ${decided.state}.`, "ok");
    } catch (err) {
      if (err.code === "already_decided") {
        const d = (err.details && err.details.decision) || {};
        out.show(`already decided: ${d.state || ""} by ${d.decided_by || "?"} at ${time(d.decided_at)}`, "error");
      } else out.error(err);
    }
  };
  const mayDecide = can(ctx.me, "manage", a.namespace, a.tenant);
  return h(
    "div",
    { class: "card msg approval", dataset: { approval: a.approval_id } },
    h("div", { class: "meta" }, badge("awaiting approval", "pending"), h("code", {}, a.approval_id), left, h("span", {}, `requested ${time(a.requested_at)}`)),
    h("div", {}, what(a)),
    h("div", {}, "Digest ", h("code", { class: "digest" }, a.digest)),
    json(a.envelope, "envelope"),
    mayDecide
      ? h(
          "div",
          { class: "toolbar" },
          reason,
          h("button", { type: "button", class: "primary approve", onclick: decide("approve") }, "Approve"),
          h("button", { type: "button", class: "danger reject", onclick: decide("reject") }, "Reject"),
        )
      : h("p", { class: "muted" }, "This key may not decide."),
    out,
  );
}
