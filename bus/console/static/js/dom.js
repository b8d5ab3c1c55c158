// A tiny DOM helper. Every value becomes a text node or an attribute: nothing is parsed
// as markup, so data from the bus can never inject HTML or script.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value);
    } else if (name === "dataset") {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (name === "value" || name === "checked" || name === "disabled" || name === "selected") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function pretty(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function json(value, cls) {
  return h("pre", { class: ["json", cls] }, pretty(value));
}

export function time(ms) {
  if (ms === null || ms === undefined || ms === "") return "";
  const d = typeof ms === "number" ? new Date(ms) : new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.round(ms / 1000);
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(s) < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (Math.abs(m) < 120) return `${m} min`;
  return `${Math.round(m / 60)} h`;
}

export function badge(text, kind) {
  return h("span", { class: ["badge", kind ? `badge-${kind}` : null] }, text);
}

export function table(headers, rows, attrs) {
  return h(
    "table",
    attrs || {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows),
  );
}

// A two-column table of [label, value] rows, without a header.
export function kv(rows, attrs) {
  return h("table", { class: "kv", ...(attrs || {}) }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v)))));
}

export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

export function button(text, onclick, attrs) {
  return h("button", { type: "button", ...(attrs || {}), onclick }, text);
}

// A status line for a page: errors and confirmations shown in place.
export function notice() {
  const el = h("div", { class: "notice", role: "status", "aria-live": "polite" });
  el.show = (text, kind) => {
    el.className = `notice ${kind || ""}`;
    replace(el, text || "");
  };
  el.error = (err) => el.show(describe(err), "error");
  return el;
}

export function describe(err) {
  if (err && err.code) return `${err.code}: ${err.message}`;
  return String((err && err.message) || err);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}
