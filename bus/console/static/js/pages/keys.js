// Keys (admin): create, rotate, revoke; a new secret is shown once.
import { del, get, post } from "../api.js";
import { badge, button, field, h, notice, replace, section, table, time } from "../dom.js";

export async function render(main, _params, ctx) {
  const status = notice();
  const secretBox = h("div", { id: "secret-box" });
  const body = h("tbody");
  const showSecret = (k, verb) =>
    replace(
      secretBox,
      h(
        "div",
        { class: "card" },
        h("p", {}, `${verb} key ${k.id} (${k.name}). Copy the secret now: it is not shown again.`),
        h("div", { class: "secret", id: "new-secret" }, k.secret),
        button("Done", () => replace(secretBox)),
      ),
    );
  const load = async () => {
    const keys = (await get("/v1/keys", { signal: ctx.signal })).keys;
    replace(
      body,
      keys.map((k) =>
        h(
          "tr",
          { dataset: { key: k.id } },
          h("td", {}, h("code", {}, k.id)),
          h("td", {}, k.name),
          h("td", {}, k.role === "admin" ? badge("admin", "warn") : `${k.namespace}/${k.tenant}`),
          h("td", {}, k.grants.map((g) => h("div", {}, h("code", {}, g.topics), ` ${g.actions.join(", ")}`))),
          h("td", {}, time(k.created_at), k.rotated_at ? h("div", { class: "muted" }, `rotated ${time(k.rotated_at)}`) : null),
          h("td", {}, k.revoked_at ? badge(`revoked ${time(k.revoked_at)}`, "bad") : badge("active", "ok")),
          h(
            "td",
            { class: "row-actions" },
            k.revoked_at
              ? null
              : [
                  button("Rotate", async () => {
                    if (!confirm(`Rotate ${k.id}? The old secret stops working at once.`)) return;
                    try {
                      showSecret(await post(`/v1/keys/${k.id}/rotate`), "Rotated");
                      await load();
                    } catch (err) {
                      status.error(err);
                    }
                  }),
                  button(
                    "Revoke",
                    async () => {
                      if (!confirm(`Revoke ${k.id}? This cannot be undone.`)) return;
                      try {
                        await del(`/v1/keys/${k.id}`);
                        status.show(`Revoked ${k.id}.`, "ok");
                        await load();
                      } catch (err) {
                        status.error(err);
                      }
                    },
                    { class: "danger" },
                  ),
                ],
          ),
        ),
      ),
    );
  };

  const name = h("input", { id: "key-name", required: true, placeholder: "acme-agents" });
  const role = h("select", { id: "key-role" }, h("option", { value: "tenant" }, "tenant"), h("option", { value: "admin" }, "admin"));
  const tenant = h("input", { id: "key-tenant", placeholder: "namespace/tenant", value: ctx.tenant ? `${ctx.tenant.namespace}/${ctx.tenant.tenant}` : "" });
  const grants = h("textarea", { id: "key-grants", "aria-label": "Grants", spellcheck: "false" });
  grants.value = JSON.stringify([{ topics: "*", actions: ["read"] }], null, 2);
  const form = h(
    "form",
    {
      class: "card",
      id: "create-key",
      onsubmit: async (e) => {
        e.preventDefault();
        const spec = { name: name.value.trim(), role: role.value };
        if (role.value === "tenant") {
          [spec.namespace, spec.tenant] = tenant.value.trim().split("/");
          try {
            spec.grants = JSON.parse(grants.value);
          } catch (err) {
            return status.show(`Grants are not JSON: ${err.message}`, "error");
          }
        }
        try {
          showSecret(await post("/v1/keys", spec), "Created");
          status.show("");
          await load();
        } catch (err) {
          status.error(err);
          if (Array.isArray(err.details)) status.append(h("ul", {}, err.details.map((d) => h("li", {}, h("code", {}, d.path), ` ${d.message}`))));
        }
      },
    },
    h("h2", {}, "New key"),
    h("div", { class: "toolbar" }, field("Name", name), field("Role", role), field("Tenant", tenant)),
    field("Grants (JSON)", grants, 'e.g. [{"topics": "orders-*", "actions": ["read", "write"]}]'),
    h("button", { type: "submit", class: "primary" }, "Create key"),
  );
  replace(
    main,
    h("h1", {}, "Keys"),
    status,
    secretBox,
    form,
    section("Keys", h("div", { class: "scroll" }, h("table", { id: "keys" }, h("thead", {}, h("tr", {}, ["Id", "Name", "Scope", "Grants", "Created", "State", ""].map((x) => h("th", {}, x)))), body))),
  );
  await load();
}
