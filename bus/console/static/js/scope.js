// What the signed-in key may do, from GET /v1/whoami. The console hides what the key may
// not do; the server enforces it regardless.

function glob(pattern, text) {
  let re = "^";
  for (const c of pattern) {
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`${re}$`).test(text);
}

export function can(me, action, namespace, tenant, topic) {
  if (!me) return false;
  if (me.admin) return true;
  if (namespace !== undefined && (me.namespace !== namespace || me.tenant !== tenant)) return false;
  return me.grants.some(
    (g) => g.actions.includes(action) && (topic === undefined || topic === null || glob(g.topics, topic)),
  );
}

// manage on every topic: what editing rules needs
export function canAll(me, action, namespace, tenant) {
  if (me.admin) return true;
  if (me.namespace !== namespace || me.tenant !== tenant) return false;
  return me.grants.some((g) => g.actions.includes(action) && g.topics === "*");
}

export function tenantOf(me) {
  return me.admin ? null : { namespace: me.namespace, tenant: me.tenant };
}
