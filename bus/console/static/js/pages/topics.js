// Topics: list, create, delete; a topic's detail with a live tail (GET /v1/subscribe SSE).
import { del, follow, get, post, put, qs } from "../api.js";
import { badge, kv, button, duration, field, h, json, notice, replace, section, table, time } from "../dom.js";
import { can } from "../scope.js";

const KEEP = 500; // records the tail keeps

export async function render(main, params, ctx) {
  if (params.length >= 3) return detail(main, params[0], params[1], params[2], ctx);
  return list(main, ctx);
}

function inScope(ctx, item) {
  return ctx.scope().some((t) => t.namespace === item.namespace && t.tenant === item.tenant);
}

async function list(main, ctx) {
  const { me } = ctx;
  const status = notice();
  const body = h("tbody");
  const load = async () => {
    const topics = (await get(`/v1/topics${qs(ctx.tenant || {})}`, { signal: ctx.signal })).topics.filter((t) => inScope(ctx, t));
    replace(
      body,
      topics.length ? null : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No topics.")),
      topics.map((t) =>
        h(
          "tr",
          { dataset: { topic: `${t.namespace}/${t.tenant}/${t.name}` } },
          h("td", {}, h("a", { href: `#/topics/${t.namespace}/${t.tenant}/${t.name}` }, `${t.namespace}/${t.tenant}/${t.name}`)),
          h("td", {}, String(t.partitions)),
          h("td", { class: "hide-narrow" }, retention(t.retention_ms)),
          h("td", { class: "hide-narrow" }, t.schema_binding ? `${t.schema_binding.subject}@${t.schema_binding.version}` : ""),
          h("td", { class: "hide-narrow" }, time(t.created_at)),
          h(
            "td",
            {},
            can(me, "manage", t.namespace, t.tenant, t.name)
              ? button(
                  "Delete",
                  async () => {
                    if (!confirm(`Delete topic ${t.namespace}/${t.tenant}/${t.name} and all its records?`)) return;
                    try {
                      await del(`/v1/topics/${t.namespace}/${t.tenant}/${t.name}`);
                      status.show(`Deleted ${t.name}.`, "ok");
                      await load();
                    } catch (err) {
                      status.error(err);
                    }
                  },
                  { class: "danger", "aria-label": `Delete ${t.name}` },
                )
              : null,
          ),
        ),
      ),
    );
  };
  const managed = ctx.scope().filter((t) => can(me, "manage", t.namespace, t.tenant));
  replace(
    main,
    h("h1", {}, "Topics"),
    status,
    managed.length || me.admin ? createForm(ctx, managed, status, load) : null,
    section("Topics", h("div", { class: "scroll" }, h("table", { id: "topics" }, h("thead", {}, h("tr", {}, ["Topic", "Partitions", "Retention", "Schema", "Created", ""].map((x, i) => h("th", { class: i >= 2 && i <= 4 ? "hide-narrow" : null }, x)))), body))),
  );
  await load();
}

function createForm(ctx, managed, status, reload) {
  const tenant = tenantInput(ctx, managed, "create-topic-tenant");
  const name = h("input", { id: "create-topic-name", required: true, pattern: "[a-z0-9][a-z0-9-]{0,61}[a-z0-9]?", placeholder: "orders" });
  const partitions = h("input", { id: "create-topic-partitions", type: "number", min: 1, max: 256, value: 3 });
  const retention = h("input", { id: "create-topic-retention", type: "number", min: -1, placeholder: "broker default" });
  return h(
    "form",
    {
      class: "card toolbar",
      id: "create-topic",
      onsubmit: async (e) => {
        e.preventDefault();
        const [namespace, tenantName] = tenant.value.split("/");
        const spec = { namespace, tenant: tenantName, name: name.value.trim(), partitions: Number(partitions.value) };
        if (retention.value !== "") spec.retention_ms = Number(retention.value);
        try {
          await post("/v1/topics", spec);
          status.show(`Created ${namespace}/${tenantName}/${spec.name}.`, "ok");
          name.value = "";
          await reload();
        } catch (err) {
          status.error(err);
        }
      },
    },
    field("Tenant", tenant),
    field("Name", name),
    field("Partitions", partitions),
    field("Retention (ms)", retention),
    h("button", { type: "submit", class: "primary" }, "Create topic"),
  );
}

export function tenantInput(ctx, allowed, id) {
  if (ctx.me.admin && !ctx.tenant) {
    return h("input", { id, required: true, placeholder: "namespace/tenant", pattern: "[a-z0-9-]+/[a-z0-9-]+", list: `${id}-list` });
  }
  return h("select", { id }, allowed.map((t) => h("option", { value: `${t.namespace}/${t.tenant}` }, `${t.namespace}/${t.tenant}`)));
}

function retention(ms) {
  if (ms === null || ms === undefined) return "broker default";
  if (ms === -1) return "forever";
  return duration(ms);
}

async function detail(main, namespace, tenant, name, ctx) {
  const id = `${namespace}/${tenant}/${name}`;
  const topic = await get(`/v1/topics/${id}`, { signal: ctx.signal });
  const status = notice();
  const bindBox = h("div");
  const canManage = can(ctx.me, "manage", namespace, tenant, name);
  const showBinding = (t) =>
    replace(
      bindBox,
      t.schema_binding
        ? h("span", {}, h("a", { href: `#/schemas/${namespace}/${tenant}/${t.schema_binding.subject}` }, t.schema_binding.subject), ` @ ${t.schema_binding.version}`)
        : h("span", { class: "muted" }, "not bound"),
      canManage ? bindForm(id, t, status, showBinding) : null,
    );
  showBinding(topic);
  replace(
    main,
    h("h1", {}, h("a", { href: "#/topics" }, "Topics"), " / ", id),
    status,
    section(
      "Topic",
      kv(
        [
          ["Kafka topic", h("code", {}, topic.kafka_topic)],
          ["Partitions", String(topic.partitions)],
          ["Replication factor", String(topic.replication_factor)],
          ["Retention", `${retention(topic.retention_ms)}${topic.retention_bytes ? `, ${topic.retention_bytes} bytes per partition` : ""}`],
          ["Schema binding", bindBox],
          ["Description", topic.description || ""],
          ["Labels", Object.entries(topic.labels || {}).map(([k, v]) => badge(`${k}=${v}`))],
          ["Created", time(topic.created_at)],
        ],
      ),
    ),
    can(ctx.me, "read", namespace, tenant, name) ? tail(id, topic, ctx) : null,
  );
}

function bindForm(id, topic, status, done) {
  const subject = h("input", { id: "bind-subject", placeholder: "subject", value: topic.schema_binding ? topic.schema_binding.subject : "" });
  const version = h("input", { id: "bind-version", placeholder: "latest", size: 6, value: topic.schema_binding ? String(topic.schema_binding.version) : "latest" });
  return h(
    "form",
    {
      class: "toolbar",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const v = version.value.trim() === "latest" ? "latest" : Number(version.value);
          done(await put(`/v1/topics/${id}/schema`, { subject: subject.value.trim(), version: v }));
          status.show("Bound.", "ok");
        } catch (err) {
          status.error(err);
        }
      },
    },
    field("Subject", subject),
    field("Version", version),
    h("button", { type: "submit" }, "Bind"),
    topic.schema_binding
      ? button("Unbind", async () => {
          try {
            done(await del(`/v1/topics/${id}/schema`));
            status.show("Unbound.", "ok");
          } catch (err) {
            status.error(err);
          }
        })
      : null,
  );
}

function tail(id, topic, ctx) {
  const records = [];
  let paused = false;
  let unseen = 0;
  let stream = null;
  const list = h("div", { class: "tail", id: "tail", "aria-live": "off" });
  const state = h("span", { id: "tail-state", class: "muted" });
  const from = h(
    "select",
    { id: "tail-from", "aria-label": "Start from" },
    ["latest", "earliest", "time", "offset"].map((v) => h("option", { value: v }, v === "time" ? "a time" : v === "offset" ? "an offset" : v)),
  );
  const when = h("input", { id: "tail-time", type: "datetime-local", step: 1 });
  const partition = h("input", { id: "tail-partition", type: "number", min: 0, max: topic.partitions - 1, value: 0, size: 3 });
  const offset = h("input", { id: "tail-offset", type: "number", min: 0, value: 0, size: 6 });
  const keyFilter = h("input", { id: "tail-key", placeholder: "key contains", oninput: () => draw() });
  const headerFilter = h("input", { id: "tail-header", placeholder: "header=value", oninput: () => draw() });
  const pause = button("Pause", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) unseen = 0;
    draw();
  }, { id: "tail-pause", "aria-pressed": "false" });

  const matches = (r) => {
    const k = keyFilter.value.trim();
    if (k && !(r.key || "").includes(k)) return false;
    const hf = headerFilter.value.trim();
    if (hf) {
      const [name, ...rest] = hf.split("=");
      const value = rest.join("=");
      const have = (r.headers || {})[name.trim()];
      if (have === undefined || (rest.length && have !== value)) return false;
    }
    return true;
  };

  function draw() {
    state.textContent = paused ? `paused, ${unseen} new` : `${records.length} records`;
    if (paused) return;
    const shown = records.filter(matches);
    replace(list, shown.length ? shown.map(recordView) : h("p", { class: "muted" }, "Waiting for records…"));
  }

  function open() {
    if (stream) stream.close();
    records.length = 0;
    const options = { signal: ctx.signal, onEvent, onOpen: () => (state.textContent = `${records.length} records (live)`) };
    let path = `/v1/subscribe/${id}`;
    if (from.value === "offset") {
      options.lastEventId = `${Number(partition.value)}:${Number(offset.value)}`;
    } else if (from.value === "time") {
      const ms = when.value ? new Date(when.value).getTime() : Date.now();
      path += `?from=${ms}`;
    } else {
      path += `?from=${from.value}`;
    }
    stream = follow(path, options);
    draw();
  }

  function onEvent(e) {
    if (e.event !== "record") return;
    records.unshift(e.data);
    if (records.length > KEEP) records.length = KEEP;
    if (paused) unseen += 1;
    draw();
  }

  open();
  return section(
    "Live tail",
    h(
      "form",
      { class: "toolbar", onsubmit: (e) => { e.preventDefault(); open(); } },
      field("From", from),
      field("Time", when),
      field("Partition", partition),
      field("Offset", offset),
      h("button", { type: "submit", id: "tail-go" }, "Go"),
      field("Key", keyFilter),
      field("Header", headerFilter),
      pause,
      state,
    ),
    list,
  );
}

function recordView(r) {
  return h(
    "div",
    { class: "record", dataset: { partition: r.partition, offset: r.offset } },
    h(
      "div",
      { class: "meta" },
      h("span", {}, `p${r.partition} @ ${r.offset}`),
      r.key !== null && r.key !== undefined ? h("span", {}, "key ", h("code", {}, r.key)) : null,
      h("span", {}, time(r.timestamp)),
      h("span", {}, r.content_type),
    ),
    json(r.payload),
    h("details", {}, h("summary", {}, `headers (${Object.keys(r.headers || {}).length})`), json(r.headers)),
  );
}
