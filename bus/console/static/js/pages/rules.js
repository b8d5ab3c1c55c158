// Rules: a tenant's publish-edge rule set, edited as JSON with validation errors shown
// next to the rule (and field) they are about.
import { get, put } from "../api.js";
import { field, h, json, notice, replace, section } from "../dom.js";
import { canAll } from "../scope.js";

export async function render(main, params, ctx) {
  const tenants = ctx.scope();
  const picked = params.length >= 2 ? { namespace: params[0], tenant: params[1] } : tenants[0];
  if (!picked) return replace(main, h("h1", {}, "Rules"), h("p", { class: "muted" }, "No tenants."));
  const select = h(
    "select",
    { id: "rules-tenant", onchange: () => (location.hash = `#/rules/${select.value}`) },
    tenants.map((t) => h("option", { value: `${t.namespace}/${t.tenant}`, selected: t.namespace === picked.namespace && t.tenant === picked.tenant }, `${t.namespace}/${t.tenant}`)),
  );
  const path = `/v1/rules/${picked.namespace}/${picked.tenant}`;
  const set = await get(path, { signal: ctx.signal });
  const status = notice();
  const editor = h("textarea", { id: "rules-editor", "aria-label": "Rules (JSON)", spellcheck: "false", rows: 18 });
  editor.value = JSON.stringify(set.rules, null, 2);
  const problems = h("div", { id: "rules-errors" });
  const mayEdit = canAll(ctx.me, "manage", picked.namespace, picked.tenant);
  if (!mayEdit) editor.readOnly = true;
  const save = async () => {
    replace(problems);
    let rules;
    try {
      rules = JSON.parse(editor.value);
    } catch (err) {
      return status.show(`Not JSON: ${err.message}`, "error");
    }
    try {
      const stored = await put(path, { rules });
      editor.value = JSON.stringify(stored.rules, null, 2);
      status.show(`Saved ${stored.rules.length} rule(s).`, "ok");
    } catch (err) {
      status.error(err);
      replace(problems, explain(err, rules));
    }
  };
  replace(
    main,
    h("h1", {}, "Rules"),
    h("div", { class: "toolbar" }, field("Tenant", select)),
    status,
    section(
      `Rules of ${picked.namespace}/${picked.tenant}`,
      h("p", { class: "muted" }, "Evaluated top to bottom on every publish; the first match acts. See docs/rules.md."),
      editor,
      problems,
      mayEdit ? h("button", { type: "button", class: "primary", id: "rules-save", onclick: save }, "Save") : h("p", { class: "muted" }, "This key may read the rules, not change them (needs manage on *)."),
    ),
  );
}

// A refusal, placed on the rule it is about.
function explain(err, rules) {
  const d = err.details;
  if (err.code === "invalid_rule" && d && Number.isInteger(d.index)) {
    return h(
      "div",
      { class: "notice error rule-error", dataset: { index: d.index } },
      h("b", {}, `Rule ${d.index}${d.rule ? ` (${d.rule})` : ""}`),
      d.path ? [" at ", h("code", {}, d.path)] : null,
      `: ${d.reason || err.message}`,
      Array.isArray(rules) && rules[d.index] ? json(rules[d.index]) : null,
    );
  }
  if (Array.isArray(d)) {
    return h("ul", { class: "notice error" }, d.map((x) => h("li", {}, h("code", {}, x.path), ` ${x.message}`)));
  }
  return null;
}
