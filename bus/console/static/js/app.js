// The console's shell: sign-in, navigation, the tenant picker, and a hash router that
// gives each page an AbortSignal (aborted when the page is left: its streams close).
import { get, session } from "./api.js";
import { button, field, h, notice, replace } from "./dom.js";
import { can } from "./scope.js";

const PAGES = [
  { path: "overview", title: "Overview", module: "./pages/overview.js", show: () => true },
  { path: "topics", title: "Topics", module: "./pages/topics.js", show: () => true },
  { path: "subscriptions", title: "Subscriptions", module: "./pages/subscriptions.js", show: () => true },
  { path: "schemas", title: "Schemas", module: "./pages/schemas.js", show: () => true },
  { path: "agents", title: "Agents", module: "./pages/agents.js", show: () => true },
  { path: "conversations", title: "Conversations", module: "./pages/conversations.js", show: () => true },
  { path: "approvals", title: "Approvals", module: "./pages/approvals.js", show: (me) => can(me, "read") },
  { path: "audit", title: "Audit", module: "./pages/audit.js", show: (me) => me.admin || can(me, "manage") },
  { path: "keys", title: "Keys", module: "./pages/keys.js", show: (me) => me.admin },
  { path: "rules", title: "Rules", module: "./pages/rules.js", show: (me) => can(me, "read") },
];

const root = document.getElementById("app");
let current = null; // {controller}
const ctx = { me: null, tenants: [], tenant: null };

function pairKey(t) {
  return `${t.namespace}/${t.tenant}`;
}

// The tenants the pages show: the chosen one, or every one the key can see.
ctx.scope = () => (ctx.tenant ? [ctx.tenant] : ctx.tenants);

async function discoverTenants() {
  if (!ctx.me.admin) return [{ namespace: ctx.me.namespace, tenant: ctx.me.tenant }];
  const seen = new Map();
  const lists = await Promise.allSettled([
    get("/v1/topics"),
    get("/v1/agents"),
    get("/v1/conversations"),
    get("/v1/subscriptions"),
  ]);
  for (const result of lists) {
    if (result.status !== "fulfilled") continue;
    for (const items of Object.values(result.value)) {
      if (!Array.isArray(items)) continue;
      for (const item of items) {
        if (item.namespace && item.tenant && item.namespace !== "bus") {
          seen.set(pairKey(item), { namespace: item.namespace, tenant: item.tenant });
        }
      }
    }
  }
  return [...seen.values()].sort((a, b) => pairKey(a).localeCompare(pairKey(b)));
}

function signIn(message) {
  document.title = "Agentbus console: sign in";
  const input = h("input", {
    type: "password",
    id: "api-key",
    name: "api-key",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "abk_…",
  });
  const status = notice();
  if (message) status.show(message, "error");
  const form = h(
    "form",
    {
      class: "signin card",
      onsubmit: async (e) => {
        e.preventDefault();
        session.set(input.value.trim());
        try {
          await start();
        } catch (err) {
          session.clear();
          status.show(err.status === 401 ? "That key is unknown, rotated or revoked." : String(err.message), "error");
        }
      },
    },
    h("h1", {}, "Agentbus console"),
    h("p", {}, "Sign in with an API key. It is kept in this tab only (session storage) and sent in the Authorization header."),
    field("API key", input),
    h("button", { type: "submit", id: "sign-in" }, "Sign in"),
    status,
  );
  replace(root, form);
  input.focus();
}

function tenantPicker() {
  if (!ctx.me.admin) return h("span", { class: "tenant", id: "tenant" }, `${ctx.me.namespace}/${ctx.me.tenant}`);
  const select = h(
    "select",
    {
      id: "tenant-picker",
      "aria-label": "Tenant",
      onchange: () => {
        ctx.tenant = ctx.tenants.find((t) => pairKey(t) === select.value) || null;
        sessionStorage.setItem("agentbus.tenant", select.value);
        route();
      },
    },
    h("option", { value: "" }, "All tenants"),
    ctx.tenants.map((t) => h("option", { value: pairKey(t), selected: ctx.tenant && pairKey(t) === pairKey(ctx.tenant) }, pairKey(t))),
  );
  return select;
}

function shell() {
  const nav = h(
    "nav",
    { id: "nav", "aria-label": "Pages" },
    h(
      "ul",
      {},
      PAGES.filter((p) => p.show(ctx.me)).map((p) =>
        h("li", {}, h("a", { href: `#/${p.path}`, id: `nav-${p.path}`, dataset: { page: p.path } }, p.title)),
      ),
    ),
  );
  const who = ctx.me.admin ? `admin key ${ctx.me.key_id}` : `key ${ctx.me.key_id}`;
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/overview" }, "Agentbus"),
    tenantPicker(),
    h("span", { class: "who", id: "who" }, who),
    button(
      "Sign out",
      () => {
        session.clear();
        sessionStorage.removeItem("agentbus.tenant");
        if (current) current.controller.abort();
        signIn();
      },
      { id: "sign-out" },
    ),
  );
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(root, h("a", { class: "skip", href: "#main", onclick: (e) => { e.preventDefault(); main.focus(); } }, "Skip to content"), header, nav, main);
  return main;
}

async function route() {
  const main = document.getElementById("main");
  if (!main || !ctx.me) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const page = PAGES.find((p) => p.path === (parts[0] || "overview") && p.show(ctx.me)) || PAGES[0];
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { controller };
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === page.path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `Agentbus: ${page.title}`;
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    const mod = await import(page.module);
    if (controller.signal.aborted) return;
    replace(main);
    await mod.render(main, parts.slice(1), { ...ctx, signal: controller.signal });
  } catch (err) {
    if (controller.signal.aborted) return;
    replace(main, h("div", { class: "notice error" }, `${err.code || "error"}: ${err.message}`));
  }
}

async function start() {
  ctx.me = await get("/v1/whoami");
  ctx.tenants = await discoverTenants();
  const chosen = sessionStorage.getItem("agentbus.tenant");
  ctx.tenant = ctx.me.admin ? ctx.tenants.find((t) => pairKey(t) === chosen) || null : ctx.tenants[0];
  shell();
  await route();
}

window.addEventListener("hashchange", route);
window.addEventListener("agentbus:signed-out", () => {
  if (!ctx.me) return;
  ctx.me = null;
  session.clear();
  if (current) current.controller.abort();
  signIn("The key was refused (revoked or rotated?): sign in again.");
});

if (session.key) {
  start().catch(() => {
    session.clear();
    signIn();
  });
} else {
  signIn();
}
