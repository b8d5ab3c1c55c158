/** Names of tenant-scoped things: "orders" in the client's namespace/tenant, or "ns/tenant/orders". */

export interface Scope {
  namespace: string;
  tenant: string;
}

export function scoped(defaults: Partial<Scope>, name: string): [string, string, string] {
  const parts = name.split("/");
  if (parts.length === 3) return parts as [string, string, string];
  if (parts.length !== 1) throw new TypeError(`"${name}" is neither a name nor namespace/tenant/name`);
  return [...scope(defaults), name];
}

export function scope(defaults: Partial<Scope>, given?: Partial<Scope>): [string, string] {
  const namespace = given?.namespace ?? defaults.namespace;
  const tenant = given?.tenant ?? defaults.tenant;
  if (!namespace || !tenant) {
    throw new TypeError("give namespace and tenant (or set them on the client)");
  }
  return [namespace, tenant];
}

/** A path from segments, each percent-encoded. */
export function path(...segments: readonly (string | number)[]): string {
  return segments.map((s, i) => (i === 0 ? String(s) : encodeURIComponent(String(s)))).join("/");
}

/** /v1/{kind}/{ns}/{tenant}/{name}, the name resolved against the defaults. */
export function scopedPath(kind: string, defaults: Partial<Scope>, name: string, ...rest: string[]): string {
  return path(`/v1/${kind}`, ...scoped(defaults, name), ...rest);
}
