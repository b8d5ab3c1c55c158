// Schemas: subjects, versions, the diff of two versions with breaking changes marked by
// JSON pointer, a compatibility check, and the topics bound to a subject.
import { get, post, qs } from "../api.js";
import { badge, field, h, json, notice, replace, section, table, time } from "../dom.js";
import { can } from "../scope.js";

const MODES = ["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"];

export async function render(main, params, ctx) {
  if (params.length >= 3) return detail(main, params[0], params[1], params[2], ctx);
  const [subjects, topics] = await Promise.all([
    get(`/v1/schemas${qs(ctx.tenant || {})}`, { signal: ctx.signal }),
    get(`/v1/topics${qs(ctx.tenant || {})}`, { signal: ctx.signal }),
  ]);
  const shown = subjects.subjects.filter((s) => s.namespace === "bus" || ctx.scope().some((t) => t.namespace === s.namespace && t.tenant === s.tenant));
  replace(
    main,
    h("h1", {}, "Schemas"),
    section(
      "Subjects",
      h(
        "div",
        { class: "scroll" },
        table(
          ["Subject", "Compatibility", "Versions", "Latest", "Bound topics"],
          shown.length
            ? shown.map((s) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("a", { href: `#/schemas/${s.namespace}/${s.tenant}/${s.subject}` }, `${s.namespace}/${s.tenant}/${s.subject}`)),
                  h("td", {}, s.compatibility),
                  h("td", {}, (s.versions || []).join(", ")),
                  h("td", {}, String(s.latest ?? "")),
                  h("td", {}, bound(topics.topics, s).map((t) => h("div", {}, h("a", { href: `#/topics/${t.namespace}/${t.tenant}/${t.name}` }, t.name)))),
                ),
              )
            : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No subjects.")),
          { id: "subjects" },
        ),
      ),
    ),
  );
}

function bound(topics, s) {
  return topics.filter((t) => t.namespace === s.namespace && t.tenant === s.tenant && t.schema_binding && t.schema_binding.subject === s.subject);
}

async function detail(main, namespace, tenant, subject, ctx) {
  const base = `/v1/schemas/${namespace}/${tenant}/${subject}`;
  const [versions, config, topics] = await Promise.all([
    get(`${base}/versions`, { signal: ctx.signal }),
    get(`${base}/config`, { signal: ctx.signal }),
    get(`/v1/topics${qs({ namespace, tenant })}`, { signal: ctx.signal }).catch(() => ({ topics: [] })),
  ]);
  const list = versions.versions;
  const status = notice();
  const diffBox = h("div", { id: "schema-diff" });
  const pick = (id, chosen) =>
    h("select", { id, onchange: () => showDiff() }, list.map((v) => h("option", { value: v.version, selected: v.version === chosen }, `v${v.version}`)));
  const older = pick("diff-from", list.length > 1 ? list[list.length - 2].version : list[0] && list[0].version);
  const newer = pick("diff-to", list.length ? list[list.length - 1].version : null);

  async function showDiff() {
    const a = list.find((v) => String(v.version) === older.value);
    const b = list.find((v) => String(v.version) === newer.value);
    if (!a || !b) return replace(diffBox, h("p", { class: "muted" }, "No versions."));
    const [from, to] = a.version <= b.version ? [a, b] : [b, a];
    const changes = diff(from.schema, to.schema, "");
    let breaking = [];
    if (from.version !== to.version) {
      try {
        const report = await post(`${base}/compatibility`, { schema: to.schema, mode: "FULL_TRANSITIVE" });
        breaking = report.breaking_changes.filter((c) => c.version === from.version);
      } catch (err) {
        status.error(err);
      }
    }
    const isBreaking = (pointer) => breaking.some((c) => pointer === c.pointer || pointer.startsWith(`${c.pointer}/`) || c.pointer.startsWith(`${pointer}/`));
    replace(
      diffBox,
      h("p", {}, `v${from.version} → v${to.version}: ${changes.length} change(s), `, breaking.length ? badge(`${breaking.length} breaking`, "bad") : badge("none breaking", "ok")),
      breaking.length
        ? h(
            "ul",
            { id: "breaking-changes" },
            breaking.map((c) => h("li", {}, h("code", {}, c.pointer || "/"), " ", badge(c.change, "bad"), ` ${c.direction}: ${c.message}`)),
          )
        : null,
      changes.length
        ? h(
            "div",
            { class: "scroll" },
            table(
              ["JSON pointer", "Change", `v${from.version}`, `v${to.version}`],
              changes.map((c) =>
                h(
                  "tr",
                  { class: isBreaking(c.pointer) ? "breaking" : null, dataset: { pointer: c.pointer } },
                  h("td", {}, h("code", {}, c.pointer || "/")),
                  h("td", {}, c.kind),
                  h("td", {}, c.kind === "added" ? "" : json(c.old)),
                  h("td", {}, c.kind === "removed" ? "" : json(c.new)),
                ),
              ),
              { id: "diff-table" },
            ),
          )
        : h("p", { class: "muted" }, "The two versions are the same."),
    );
  }

  const boundTopics = bound(topics.topics, { namespace, tenant, subject });
  replace(
    main,
    h("h1", {}, h("a", { href: "#/schemas" }, "Schemas"), " / ", `${namespace}/${tenant}/${subject}`),
    status,
    section(
      "Subject",
      h("p", {}, `Compatibility ${config.compatibility} · ${list.length} live version(s) · bound topics: `, boundTopics.length ? boundTopics.map((t) => h("a", { href: `#/topics/${namespace}/${tenant}/${t.name}` }, `${t.name} `)) : h("span", { class: "muted" }, "none")),
      h(
        "div",
        { class: "scroll" },
        table(
          ["Version", "Schema id", "Created", "Description"],
          list.map((v) => h("tr", {}, h("td", {}, `v${v.version}`), h("td", {}, h("code", {}, v.schema_id.slice(0, 16))), h("td", {}, time(v.created_at)), h("td", {}, v.description || ""))),
        ),
      ),
    ),
    section("Diff", h("div", { class: "toolbar" }, field("From", older), field("To", newer)), diffBox),
    section("Versions", list.map((v) => h("details", {}, h("summary", {}, `v${v.version}`), json(v.schema)))),
    compatibilityBox(base, namespace, tenant, ctx, list),
  );
  await showDiff();
}

function compatibilityBox(base, namespace, tenant, ctx, list) {
  const latest = list.length ? list[list.length - 1].schema : { type: "object" };
  const text = h("textarea", { id: "compat-schema", "aria-label": "Candidate schema", spellcheck: "false" });
  text.value = JSON.stringify(latest, null, 2);
  const mode = h("select", { id: "compat-mode" }, h("option", { value: "" }, "the subject's mode"), MODES.map((m) => h("option", { value: m }, m)));
  const out = h("div", { id: "compat-result" });
  const status = notice();
  const parse = () => {
    try {
      return JSON.parse(text.value);
    } catch (err) {
      status.show(`Not JSON: ${err.message}`, "error");
      return undefined;
    }
  };
  return section(
    "Compatibility check",
    h("p", { class: "muted" }, "Paste a candidate schema: the bus reports every breaking change without registering anything."),
    text,
    h(
      "div",
      { class: "toolbar" },
      field("Mode", mode),
      h(
        "button",
        {
          type: "button",
          id: "compat-check",
          onclick: async () => {
            const schema = parse();
            if (schema === undefined) return;
            status.show("");
            try {
              const body = { schema };
              if (mode.value) body.mode = mode.value;
              const report = await post(`${base}/compatibility`, body);
              replace(
                out,
                report.compatible ? badge(`compatible (${report.mode})`, "ok") : badge(`incompatible (${report.mode})`, "bad"),
                report.breaking_changes.length
                  ? h("ul", {}, report.breaking_changes.map((c) => h("li", {}, h("code", {}, c.pointer || "/"), " ", badge(c.change, "bad"), ` v${c.version} ${c.direction}: ${c.message}`)))
                  : null,
              );
            } catch (err) {
              status.error(err);
            }
          },
        },
        "Check",
      ),
      can(ctx.me, "manage", namespace, tenant)
        ? h(
            "button",
            {
              type: "button",
              id: "register-version",
              onclick: async () => {
                const schema = parse();
                if (schema === undefined) return;
                try {
                  const v = await post(`${base}/versions`, { schema });
                  status.show(`Registered v${v.version}.`, "ok");
                } catch (err) {
                  status.error(err);
                  if (err.details && err.details.breaking_changes) replace(out, json(err.details));
                }
              },
            },
            "Register as a new version",
          )
        : null,
    ),
    status,
    out,
  );
}

// Every difference between two JSON values, by JSON pointer (RFC 6901).
export function diff(a, b, pointer) {
  const escape = (k) => String(k).replace(/~/g, "~0").replace(/\//g, "~1");
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const out = [];
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const p = `${pointer}/${escape(k)}`;
      if (!(k in b)) out.push({ pointer: p, kind: "removed", old: a[k] });
      else if (!(k in a)) out.push({ pointer: p, kind: "added", new: b[k] });
      else out.push(...diff(a[k], b[k], p));
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((x, i) => diff(x, b[i], `${pointer}/${i}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ pointer, kind: "changed", old: a, new: b }];
}
