// The status page: reads /ui/api/* every 2 s while visible and redraws. Read-only.
// Every value from the server goes into the page as text (never as HTML).
"use strict";

const POLL_MS = 2000;
const PAGE_SIZE = 50;
const state = { offset: 0, q: "", status: "", revision: null, openFile: null, opener: null, total: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function when(iso) {
  if (!iso) return "-";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function link(url, text) {
  const href = safeUrl(url);
  if (!href) return text || "-";
  return el("a", { href, target: "_blank", rel: "noopener noreferrer" }, text || href);
}

function pairs(node, rows) {
  replace(node, rows.filter(Boolean).map(([term, value]) => [el("dt", { text: term }), el("dd", {}, value ?? "-")]));
}

function badge(name, label) {
  if (!name) return el("span", { class: "badge", text: "no status" });
  return el("span", { class: `badge ${name}` }, label || name);
}

async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (answer.status === 404) return null;
  if (!answer.ok) throw new Error(`${url}: HTTP ${answer.status}`);
  return answer.json();
}

// -- the receiver at a glance -------------------------------------------------

function renderVerdict(health) {
  const verdict = $("verdict");
  verdict.className = `verdict ${health.status}`;
  const problems = health.reasons.filter((r) => r.severity === "problem").length;
  const warnings = health.reasons.length - problems;
  const words = { ok: "Healthy", degraded: "Degraded", unhealthy: "Unhealthy" }[health.status] || health.status;
  const counts = [problems && `${problems} problem${problems > 1 ? "s" : ""}`, warnings && `${warnings} warning${warnings > 1 ? "s" : ""}`].filter(Boolean);
  const text = counts.length ? `${words}: ${counts.join(", ")}` : words;
  if (verdict.textContent !== text) verdict.textContent = text;
  if (!health.reasons.length) {
    replace($("reasons"), el("li", { class: "empty", text: "Nothing wrong: deliveries are accepted and applied." }));
    return;
  }
  replace($("reasons"), health.reasons.map((r) =>
    el("li", {},
      el("span", { class: `sev ${r.severity}`, text: r.severity }),
      r.message,
      r.since ? ` (since ${when(r.since)})` : "",
      " ", el("span", { class: "code", text: `[${r.reason}]` }))));
}

function renderChart(series) {
  const width = 600, height = 64;
  const step = width / series.length;
  const peak = Math.max(1, ...series.map((m) => m.accepted + m.refused + m.failed));
  const total = series.reduce((sum, m) => sum + m.accepted, 0);
  const refused = series.reduce((sum, m) => sum + m.refused + m.failed, 0);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Last hour: ${total} deliveries accepted, ${refused} refused or failed, per minute`);
  series.forEach((minute, index) => {
    const good = (minute.accepted / peak) * height;
    const bad = ((minute.refused + minute.failed) / peak) * height;
    for (const [cls, h, y] of [["accepted", good, height - good], ["refused", bad, height - good - bad]]) {
      if (h <= 0) continue;
      const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      bar.setAttribute("class", cls);
      bar.setAttribute("x", String(index * step + 1));
      bar.setAttribute("width", String(Math.max(step - 2, 1)));
      bar.setAttribute("y", String(y));
      bar.setAttribute("height", String(h));
      svg.append(bar);
    }
  });
  replace($("chart"), svg);
  return [total, refused];
}

function renderOverview(data) {
  renderVerdict(data.health);
  const backlog = data.backlog;
  pairs($("backlog"), [
    ["pending", String(backlog.pending)],
    ["oldest", backlog.oldest_at ? `${ago(backlog.oldest_at)}` : "-"],
    ["waiting for Frame.io", String(backlog.deferred)],
    backlog.deferred ? ["since", `${when(backlog.deferred_since)}`] : null,
    backlog.deferred_reason ? ["why", backlog.deferred_reason] : null,
  ]);
  const [accepted, refused] = renderChart(data.deliveries.last_hour);
  pairs($("deliveries"), [
    ["accepted (hour)", String(accepted)],
    ["refused (hour)", String(refused)],
    ["accepted (all time)", String(data.deliveries.total)],
    ["refused (all time)", String(data.deliveries.rejected_total)],
  ]);
  const tunnel = data.tunnel;
  pairs($("tunnel"), [
    ["mode", tunnel.mode],
    ["state", tunnel.state],
    ["public URL", link(tunnel.public_url)],
    tunnel.since ? ["since", when(tunnel.since)] : null,
    ["restarts", String(tunnel.restarts)],
    tunnel.last_error ? ["last error", tunnel.last_error] : null,
  ]);
  const frameio = data.frameio;
  const registration = frameio.registration;
  pairs($("frameio"), frameio.configured ? [
    ["sign-in", frameio.signin + (frameio.signin_detail ? `: ${frameio.signin_detail}` : "")],
    ["API", frameio.failing_since ? `failing since ${when(frameio.failing_since)}` : "answering"],
    frameio.last_error ? ["last error", frameio.last_error] : null,
    ["webhook", registration ? (registration.registered_url || (registration.pending ? "being registered" : "not registered")) : "not managed (no tunnel)"],
    registration && registration.last_error ? ["registration error", registration.last_error] : null,
  ] : [["API", "not configured"]]);
  const discord = data.discord;
  const destination = (d) => d ? (d.destination === "broken" ? `broken: ${d.destination_reason || ""}` : d.destination) : "not configured";
  pairs($("discord"), [
    ["status messages", destination(discord.status)],
    ["alerts", discord.alerts ? destination(discord.alerts) : (discord.status ? "same channel" : "not configured")],
    ["waiting to send", String(data.notifications_pending)],
  ]);
  pairs($("held"), [
    ["quarantined deliveries", String(data.quarantined)],
    ["dead-lettered messages", String(data.dead_letters)],
    ["open incidents", data.incidents.length ? data.incidents.map((i) => i.title).join("; ") : "none"],
  ]);
  const select = $("status");
  if (select.options.length === 1) {
    for (const s of data.statuses) select.append(el("option", { value: s.name }, s.label));
  }
  for (const option of select.options) {
    const s = data.statuses.find((x) => x.name === option.value);
    if (s) option.textContent = `${s.label} (${s.count})`;
  }
  $("updated").textContent = `Updated ${new Date(data.generated_at).toLocaleTimeString()}`;
}

// -- tracked files --------------------------------------------------------------

function renderFiles(page) {
  state.total = page.total;
  state.revision = page.revision;
  const rows = page.files.map((f) => el("tr", { "data-file-id": f.file_id },
    el("td", {}, el("button", { type: "button", class: "open", onclick: (e) => openTimeline(f.file_id, e.currentTarget) }, f.name || f.file_id)),
    el("td", {}, badge(f.status, f.status_label)),
    el("td", { text: String(f.version) }),
    el("td", {}, el("time", { datetime: f.updated_at || "" }, when(f.updated_at))),
    el("td", { text: String(f.comment_count) })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "No tracked file matches." })));
  replace($("files"), rows);
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.files.length;
  $("page-info").textContent = `${first}–${last} of ${page.total}`;
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.total;
}

function filesUrl() {
  const query = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE_SIZE) });
  if (state.q) query.set("q", state.q);
  if (state.status) query.set("status", state.status);
  return `/ui/api/files?${query}`;
}

async function loadFiles() {
  renderFiles(await getJson(filesUrl()));
}

// -- one file's timeline -------------------------------------------------------

async function openTimeline(fileId, opener) {
  state.openFile = fileId;
  state.opener = opener || null;
  await loadTimeline();
  const dialog = $("timeline");
  if (!dialog.open) dialog.showModal();
  $("close-timeline").focus();
}

async function loadTimeline() {
  const file = await getJson(`/ui/api/files/${encodeURIComponent(state.openFile)}`);
  $("timeline-title").textContent = file ? (file.name || file.file_id) : state.openFile;
  const body = $("timeline-body");
  if (!file) {
    replace(body, el("p", { text: "This file is not tracked." }));
    return;
  }
  const links = Object.entries(file.links || {}).map(([name, url]) => el("li", {}, link(url, name.replace(/_/g, " "))));
  const history = (file.history || []).slice().reverse().map((h) => el("li", {},
    el("time", { datetime: h.at }, when(h.at)), ": ",
    `${h.old_status || "new file"} → ${h.new_status || "no status"}`,
    ` by ${h.event_type}`, ` (version ${h.version}) `,
    el("span", { class: "code", text: `delivery ${h.delivery_id}` })));
  const waiting = (file.pending_enrichment || []).map((p) => el("li", {},
    `${p.event_type} received ${when(p.received_at)}, ${p.attempts} attempt(s), next ${when(p.next_attempt_at)}: ${p.last_error || "waiting"}`));
  const comment = file.last_comment;
  const comments = (file.comments || []).map((c) => el("li", { class: c.thread_key ? "reply" : "thread" },
    el("span", { class: `state state-${c.state}`, text: c.state === "resolved" ? "resolved" : "open" }), " ",
    c.thread_key ? "reply, " : "",
    `${c.author || "someone"}`, c.at ? ` (${when(c.at)})` : "", `: “${c.text || "(text unknown)"}”`));
  const summary = file.tracked === false
    ? el("p", { text: "Not tracked yet: its first delivery waits for Frame.io." })
    : el("dl", {},
      el("dt", { text: "status" }), el("dd", {}, badge(file.status, file.status_label)),
      el("dt", { text: "version" }), el("dd", { text: String(file.version) }),
      el("dt", { text: "file id" }), el("dd", { class: "code", text: file.file_id }),
      el("dt", { text: "last change" }), el("dd", { text: when(file.updated_at) }),
      el("dt", { text: "view" }), el("dd", {}, link(file.view_url, "open in Frame.io")));
  replace(body,
    summary,
    el("h3", { text: "Status changes" }),
    history.length ? el("ol", { class: "history", reversed: true }, history) : el("p", { class: "empty", text: "No status change recorded." }),
    el("h3", { text: "Comments" }),
    el("p", {}, `${file.comment_count || 0} comment(s), ${file.open_comments || 0} open.`, comment ? ` Latest, by ${comment.author || "someone"} (${when(comment.at)}): “${comment.text || ""}”` : ""),
    comments.length ? el("ul", { class: "comments" }, comments) : el("p", { class: "empty", text: "No comment." }),
    el("h3", { text: "Links" }),
    links.length ? el("ul", {}, links) : el("p", { class: "empty", text: "No link known." }),
    el("h3", { text: "Waiting for Frame.io" }),
    waiting.length ? el("ul", {}, waiting) : el("p", { class: "empty", text: "Nothing pending." }));
}

function closeTimeline() {
  const dialog = $("timeline");
  if (dialog.open) dialog.close();
}

// -- polling ----------------------------------------------------------------------

let timer = null;
let painted = false;

async function refresh() {
  timer = null;
  try {
    // The first look asks for both at once; later ones fetch files only when they changed.
    const first = state.revision === null ? getJson(filesUrl()) : null;
    const overview = await getJson("/ui/api/overview");
    renderOverview(overview);
    if (first) renderFiles(await first);
    if (overview.files.revision !== state.revision) {
      await loadFiles();
      if (state.openFile && $("timeline").open) await loadTimeline();
    }
    if (!painted) {
      painted = true;
      requestAnimationFrame(() => performance.mark("postflow:files-painted"));
    }
  } catch (error) {
    $("updated").textContent = `Not updated: ${error.message}`;
  }
  schedule();
}

function schedule() {
  if (timer === null && !document.hidden) timer = setTimeout(refresh, POLL_MS);
}

function refilter() {
  state.offset = 0;
  reload();
}

document.addEventListener("DOMContentLoaded", () => {
  let typing = null;
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("search").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = event.target.value.trim(); refilter(); }, 200);
  });
  $("status").addEventListener("change", (event) => { state.status = event.target.value; refilter(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); reload(); });
  $("next").addEventListener("click", () => { state.offset += PAGE_SIZE; reload(); });
  $("close-timeline").addEventListener("click", closeTimeline);
  $("timeline").addEventListener("close", () => {
    const row = document.querySelector(`tr[data-file-id="${CSS.escape(state.openFile || "")}"] button`);
    const back = state.opener && document.contains(state.opener) ? state.opener : row;
    state.openFile = null;
    if (back) back.focus();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { clearTimeout(timer); timer = null; refresh(); } });
  refresh();
});

function reload() {
  loadFiles().catch((error) => { $("updated").textContent = `Not updated: ${error.message}`; });
}
