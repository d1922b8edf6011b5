// sriovd dashboard: reads the API with the caller's role (reader is enough) and follows GET /events.
// No framework, no build step. The token, when one is needed, stays in sessionStorage (this tab only).
"use strict";

const TOKEN_KEY = "sriovd.token";
const COLUMNS = 16;
const AUDIT_TAIL = 50;

const state = {
  pfs: new Map(),        // address -> PF (with health)
  vfs: new Map(),        // PF address -> [VF]
  byAddress: new Map(),  // VF address -> VF
  selected: null,        // VF address kept in the detail panel
  lastEventID: null,
  audit: [],
  stream: null,          // AbortController of the event stream
};
window.__sriovdErrors = [];
window.addEventListener("error", (e) => window.__sriovdErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__sriovdErrors.push(String(e.reason)));

const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// ---- API access ----

class Unauthorized extends Error {}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401) throw new Unauthorized(path);
  if (response.status === 503 && path === "/reconcile") return null;
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

function showLogin(message) {
  if (state.stream) state.stream.abort();
  $("main").hidden = true;
  $("login").hidden = false;
  $("forget").hidden = true;
  $("login-error").textContent = message || "";
  setConnection("not signed in", "down");
  $("token").focus();
}

function setConnection(text, kind) {
  const conn = $("conn");
  conn.textContent = text;
  conn.className = kind || "";
}

// ---- VF status ----

/** free, held or dirty: what the grid shows first. */
function vfStatus(vf) {
  const holder = vf.allocation;
  const reasons = (vf.health && vf.health.reasons) || [];
  if ((holder && holder.state === "dirty") || reasons.includes("dirty")) return "dirty";
  return holder ? "held" : "free";
}

const STATUS_MARK = { free: "·", held: "H", dirty: "D" };
const HEALTH_MARK = { ok: "", degraded: "~", unavailable: "!" };

function vfLabel(vf) {
  const status = vfStatus(vf);
  const health = vf.health ? vf.health.status : "ok";
  let text = `VF ${vf.index} ${vf.address}: ${status}`;
  if (vf.allocation) text += ` by ${vf.allocation.owner}`;
  text += `, health ${health}`;
  if (vf.health && vf.health.reasons.length) text += ` (${vf.health.reasons.join(", ")})`;
  return text;
}

// ---- rendering ----

function renderSummary() {
  const totals = { pfs: state.pfs.size, enabled: 0, free: 0, held: 0, dirty: 0, degraded: 0, unavailable: 0 };
  const numa = new Map();
  let rows = "";
  for (const pf of state.pfs.values()) {
    const counts = { free: 0, held: 0, dirty: 0, degraded: 0, unavailable: 0 };
    for (const vf of state.vfs.get(pf.address) || []) {
      counts[vfStatus(vf)]++;
      if (vf.health && vf.health.status !== "ok") counts[vf.health.status]++;
    }
    const enabled = (state.vfs.get(pf.address) || []).length;
    totals.enabled += enabled;
    for (const k of ["free", "held", "dirty", "degraded", "unavailable"]) totals[k] += counts[k];
    const node = pf.numa_node == null ? "none" : String(pf.numa_node);
    const n = numa.get(node) || { pfs: 0, enabled: 0, free: 0, held: 0, dirty: 0 };
    n.pfs++; n.enabled += enabled; n.free += counts.free; n.held += counts.held; n.dirty += counts.dirty;
    numa.set(node, n);
    rows += `<tr><th scope="row"><a href="#pf-${esc(pf.address)}">${esc(pf.address)}</a></th>` +
      `<td>${esc(pf.driver || "no driver")}</td><td class="num">${esc(node)}</td>` +
      `<td class="num">${enabled} of ${pf.total_vfs}</td><td class="num">${counts.free}</td>` +
      `<td class="num">${counts.held}</td><td class="num">${counts.dirty}</td>` +
      `<td class="health-${esc(pf.health.status)}">${esc(pf.health.status)}` +
      `${pf.health.reasons.length ? " (" + esc(pf.health.reasons.join(", ")) + ")" : ""}</td></tr>`;
  }
  let numaRows = "";
  for (const [node, n] of [...numa.entries()].sort()) {
    numaRows += `<tr><th scope="row">${esc(node)}</th><td class="num">${n.pfs}</td><td class="num">${n.enabled}</td>` +
      `<td class="num">${n.free}</td><td class="num">${n.held}</td><td class="num">${n.dirty}</td></tr>`;
  }
  $("summary-body").innerHTML =
    `<p id="totals">${totals.pfs} PFs, ${totals.enabled} VFs enabled: ${totals.free} free, ${totals.held} held, ` +
    `${totals.dirty} dirty; ${totals.degraded} degraded, ${totals.unavailable} unavailable.</p>` +
    `<div class="columns"><table><caption>By PF</caption><thead><tr><th scope="col">PF</th>` +
    `<th scope="col">Driver</th><th scope="col">NUMA</th><th scope="col">VFs</th><th scope="col">Free</th>` +
    `<th scope="col">Held</th><th scope="col">Dirty</th><th scope="col">Health</th></tr></thead>` +
    `<tbody>${rows}</tbody></table>` +
    `<table><caption>By NUMA node</caption><thead><tr><th scope="col">Node</th><th scope="col">PFs</th>` +
    `<th scope="col">VFs</th><th scope="col">Free</th><th scope="col">Held</th><th scope="col">Dirty</th></tr>` +
    `</thead><tbody>${numaRows}</tbody></table></div>`;
}

function cellHTML(vf, tabbable) {
  const status = vfStatus(vf);
  const health = vf.health ? vf.health.status : "ok";
  const selected = state.selected === vf.address ? " selected" : "";
  return `<button type="button" class="vf ${status} h-${health}${selected}" data-address="${esc(vf.address)}" ` +
    `data-status="${status}" data-health="${health}" tabindex="${tabbable ? 0 : -1}" ` +
    `aria-label="${esc(vfLabel(vf))}" title="${esc(vfLabel(vf))}">${STATUS_MARK[status]}${HEALTH_MARK[health]}</button>`;
}

function pfSectionHTML(pf) {
  const vfs = state.vfs.get(pf.address) || [];
  const link = pf.link ? `link ${pf.link.state || "unknown"}` : "no netdev";
  const cells = vfs.map((vf, i) => cellHTML(vf, i === 0)).join("");
  return `<div class="pf" id="pf-${esc(pf.address)}" data-pf="${esc(pf.address)}">` +
    `<h3>${esc(pf.address)} <span class="health-${esc(pf.health.status)}">health ${esc(pf.health.status)}` +
    `${pf.health.reasons.length ? " (" + esc(pf.health.reasons.join(", ")) + ")" : ""}</span></h3>` +
    `<p class="meta">${esc(pf.vendor_id)}:${esc(pf.device_id)} ${esc(pf.driver || "no driver")}, ` +
    `${esc((pf.interfaces || []).join(", ") || "no interface")}, ${esc(link)}, NUMA ${esc(pf.numa_node ?? "none")}, ` +
    `${vfs.length} of ${pf.total_vfs} VFs</p>` +
    (vfs.length ? `<div class="grid" role="group" aria-label="VFs of ${esc(pf.address)}">${cells}</div>`
      : `<p class="meta">No VFs enabled.</p>`) + `</div>`;
}

function renderPFs() {
  $("pf-list").innerHTML = [...state.pfs.values()].map(pfSectionHTML).join("");
  const select = document.querySelector("#allocation-filter select[name=pf]");
  const chosen = select.value;
  select.innerHTML = `<option value="">any</option>` +
    [...state.pfs.keys()].map((a) => `<option${a === chosen ? " selected" : ""}>${esc(a)}</option>`).join("");
}

function renderPF(address) {
  const pf = state.pfs.get(address);
  const old = document.getElementById("pf-" + address);
  if (!pf || !old) { renderPFs(); return; }
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.address : null;
  old.outerHTML = pfSectionHTML(pf);
  if (focused) {
    const cell = document.querySelector(`.vf[data-address="${CSS.escape(focused)}"]`);
    if (cell) { moveTabStop(cell); cell.focus(); }
  }
}

function setVFs(address, vfs) {
  for (const old of state.vfs.get(address) || []) state.byAddress.delete(old.address);
  state.vfs.set(address, vfs);
  for (const vf of vfs) state.byAddress.set(vf.address, vf);
}

// ---- the detail panel ----

const STATS = [["rx_packets", "rx packets"], ["tx_packets", "tx packets"], ["rx_bytes", "rx bytes"],
  ["tx_bytes", "tx bytes"], ["rx_dropped", "rx dropped"], ["tx_dropped", "tx dropped"],
  ["broadcast", "broadcast"], ["multicast", "multicast"]];

function dl(pairs) {
  return "<dl>" + pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("") + "</dl>";
}

function renderDetail(vf, full, allocation) {
  const v = full || vf;
  const health = v.health || { status: "ok", reasons: [] };
  let html = `<h3>VF ${esc(v.index)} of ${esc(v.pf)}</h3>` + dl([
    ["address", esc(v.address)],
    ["status", esc(vfStatus(v))],
    ["health", `<span class="health-${esc(health.status)}">${esc(health.status)}</span>` +
      (health.reasons.length ? " (" + esc(health.reasons.join(", ")) + ")" : "")],
    ["holder", v.allocation ? `${esc(v.allocation.owner)} (${esc(v.allocation.state)}, allocation ` +
      `${esc(v.allocation.id)}, generation ${esc(v.allocation.generation)})` : "none"],
    ["labels", allocation && Object.keys(allocation.labels || {}).length
      ? Object.entries(allocation.labels).map(([k, x]) => esc(k + "=" + x)).join(", ") : "none"],
    ["driver", esc(v.driver || "none")],
    ["interface", esc(v.interface || "none")],
    ["NUMA node", esc(v.numa_node ?? "none")],
    ["IOMMU group", esc(v.iommu_group ?? "none")],
  ]);
  if (full && full.settings) {
    html += "<h4>Settings</h4>" + dl(Object.entries(full.settings).map(([k, x]) => [k, esc(x ?? "not reported")]));
  }
  if (full) {
    html += "<h4>Traffic</h4>" + (full.stats
      ? `<table id="vf-stats"><tbody>` + STATS.map(([k, label]) => `<tr><th scope="row">${label}</th>` +
        `<td class="num">${full.stats[k] == null ? "not reported" : esc(full.stats[k].toLocaleString())}</td></tr>`)
        .join("") + "</tbody></table>"
      : "<p>Not reported by the driver.</p>");
  } else {
    html += "<p>Loading settings and traffic…</p>";
  }
  $("detail-body").innerHTML = html;
}

let detailRequest = 0;
async function showDetail(address) {
  const vf = state.byAddress.get(address);
  if (!vf) return;
  const request = ++detailRequest;
  renderDetail(vf, null, null);
  try {
    const full = await api("/vfs/" + encodeURIComponent(address));
    const allocation = full.allocation ? await api("/allocations/" + encodeURIComponent(full.allocation.id)) : null;
    if (request === detailRequest) renderDetail(vf, full, allocation);
  } catch (error) {
    if (error instanceof Unauthorized) showLogin("The token was refused.");
    else if (request === detailRequest) $("detail-body").insertAdjacentHTML("beforeend", `<p>${esc(error.message)}</p>`);
  }
}

// ---- keyboard and pointer ----

function moveTabStop(cell) {
  const grid = cell.closest(".grid");
  for (const other of grid.querySelectorAll('.vf[tabindex="0"]')) other.tabIndex = -1;
  cell.tabIndex = 0;
}

function onGridKey(event) {
  const cell = event.target.closest(".vf");
  if (!cell) return;
  const cells = [...cell.closest(".grid").querySelectorAll(".vf")];
  const i = cells.indexOf(cell);
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS };
  let next = null;
  if (event.key in moves) next = cells[i + moves[event.key]];
  else if (event.key === "Home") next = cells[0];
  else if (event.key === "End") next = cells[cells.length - 1];
  if (!next) return;
  event.preventDefault();
  moveTabStop(next);
  next.focus();
  showDetail(next.dataset.address);
}

function select(address) {
  state.selected = address;
  for (const el of document.querySelectorAll(".vf.selected")) el.classList.remove("selected");
  const cell = document.querySelector(`.vf[data-address="${CSS.escape(address)}"]`);
  if (cell) cell.classList.add("selected");
  showDetail(address);
}

let hoverTimer = null;
function wireGrid() {
  const list = $("pf-list");
  list.addEventListener("keydown", onGridKey);
  list.addEventListener("click", (e) => {
    const cell = e.target.closest(".vf");
    if (cell) { moveTabStop(cell); select(cell.dataset.address); }
  });
  list.addEventListener("focusin", (e) => {
    const cell = e.target.closest(".vf");
    if (cell) showDetail(cell.dataset.address);
  });
  list.addEventListener("mouseover", (e) => {
    const cell = e.target.closest(".vf");
    if (!cell) return;
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(() => showDetail(cell.dataset.address), 120);
  });
}

// ---- loading ----

async function loadInventory() {
  const [pfs, vfs] = await Promise.all([api("/pfs"), api("/vfs")]);
  state.pfs = new Map(pfs.items.map((pf) => [pf.address, pf]));
  state.vfs = new Map();
  state.byAddress = new Map();
  const grouped = new Map();
  for (const vf of vfs.items) {
    if (!grouped.has(vf.pf)) grouped.set(vf.pf, []);
    grouped.get(vf.pf).push(vf);
  }
  for (const address of state.pfs.keys()) setVFs(address, (grouped.get(address) || []).sort((a, b) => a.index - b.index));
  renderPFs();
  renderSummary();
}

async function loadPF(address) {
  let detail;
  try {
    detail = await api("/pfs/" + encodeURIComponent(address));
  } catch (error) {
    if (error instanceof Unauthorized) throw error;
    return loadInventory();  // the PF vanished, or something else changed: list again
  }
  const { vfs, change, ...pf } = detail;
  state.pfs.set(address, pf);
  setVFs(address, vfs);
  renderPF(address);
  renderSummary();
  if (state.selected && state.byAddress.get(state.selected)?.pf === address) showDetail(state.selected);
}

async function loadAllocations() {
  const form = $("allocation-filter");
  const params = new URLSearchParams({ limit: "500", state: form.state.value });
  if (form.owner.value) params.set("owner", form.owner.value);
  if (form.pf.value) params.set("pf", form.pf.value);
  const page = await api("/allocations?" + params);
  let items = page.items;
  const label = form.label.value.trim();
  if (label) {
    const [key, value] = label.split("=", 2);
    items = items.filter((a) => a.labels && key in a.labels && (value === undefined || a.labels[key] === value));
  }
  $("allocation-caption").textContent = `${items.length} allocation${items.length === 1 ? "" : "s"}` +
    (page.next ? " (first page)" : "");
  $("allocation-rows").innerHTML = items.map((a) => `<tr data-id="${esc(a.id)}"><td>${esc(a.owner)}</td>` +
    `<td>${esc(a.vf)}</td><td>${esc(a.pf)}</td><td>${esc(a.state)}</td>` +
    `<td>${esc(Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v).join(", "))}</td>` +
    `<td>${esc(a.created_at)}</td></tr>`).join("");
}

const CAPACITY_COLUMNS = ["total_vfs", "enabled", "free", "held", "dirty", "reserved", "cordoned", "headroom"];

function capacityTable(caption, keyName, rows, keyOf) {
  const head = CAPACITY_COLUMNS.map((c) => `<th scope="col" class="num">${esc(c.replace("_vfs", ""))}</th>`).join("");
  const body = rows.map((r) => `<tr data-key="${esc(keyOf(r))}"><th scope="row">${esc(keyOf(r))}</th>` +
    CAPACITY_COLUMNS.map((c) => `<td class="num" data-count="${c}">${esc(r[c])}</td>`).join("") + "</tr>").join("");
  return `<table class="capacity"><caption>${esc(caption)}</caption><thead><tr><th scope="col">${esc(keyName)}</th>` +
    `${head}</tr></thead><tbody>${body}</tbody></table>`;
}

async function loadCapacity() {
  const report = await api("/capacity");
  const none = (v) => (v == null ? "none" : String(v));
  $("capacity-body").innerHTML =
    capacityTable("Host", "", [report.host], () => "host") +
    capacityTable("By NUMA node", "Node", report.numa_nodes, (r) => none(r.numa_node)) +
    capacityTable("By driver", "Driver", report.drivers, (r) => none(r.driver)) +
    capacityTable("By device (vendor:device)", "Device", report.devices, (r) => r.vendor_device);
}

async function loadQuotas() {
  const page = await api("/quotas");
  $("quota-caption").textContent = page.items.length ? `${page.items.length} quota` +
    (page.items.length === 1 ? "" : "s") + "; the longest matching owner prefix applies" : "No quotas set.";
  $("quota-rows").innerHTML = page.items.map((q) => {
    const full = q.used >= q.max_vfs;
    const nodes = q.per_numa_node.map((n) => `node ${esc(n.numa_node)}: ${esc(n.used)} of ` +
      `${n.max_vfs == null ? "any" : esc(n.max_vfs)}`).join(", ");
    return `<tr data-prefix="${esc(q.owner_prefix)}"${full ? ' class="failure"' : ""}>` +
      `<td>${esc(q.owner_prefix)}</td><td class="num" data-count="used">${esc(q.used)}</td>` +
      `<td class="num" data-count="max_vfs">${esc(q.max_vfs)}${full ? " (full)" : ""}</td><td>${nodes}</td></tr>`;
  }).join("");
}

async function loadOperations() {
  const [running, queued] = await Promise.all([api("/operations?state=running"), api("/operations?state=queued")]);
  const items = [...queued.items, ...running.items];
  $("operation-list").innerHTML = items.map((op) => `<li>${esc(op.kind)} on ${esc(op.target)}: ` +
    `<b>${esc(op.state)}</b> since ${esc(op.created_at || op.started_at || "")}</li>`).join("");
}

async function loadReconcile() {
  const report = await api("/reconcile");
  if (!report) { $("reconcile-body").innerHTML = "<p>Not yet: startup recovery is still running.</p>"; return; }
  const counts = Object.entries(report.counts || {}).map(([k, v]) => `${esc(k)} ${esc(v)}`).join(", ") || "none";
  $("reconcile-body").innerHTML = dl([
    ["finished", esc(report.finished_at)], ["took", esc(report.duration_ms) + " ms"],
    ["dry run", report.dry_run ? "yes" : "no"], ["actions by outcome", counts],
    ["actions", esc((report.actions || []).length)],
  ]);
}

function auditLine(e) {
  const failed = e.outcome !== "success";
  return `<li class="${failed ? "failure" : ""}">${esc(e.at)} ${esc(e.actor)} ${esc(e.action)} ${esc(e.target)}` +
    `${failed ? " <b>" + esc(e.outcome) + "</b>" + (e.error ? ": " + esc(e.error) : "") : ""}</li>`;
}

function renderAudit() {
  $("audit-list").innerHTML = state.audit.slice().reverse().map(auditLine).join("");
}

async function loadAudit() {
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  let after = null;
  let events = [];
  for (let page = 0; page < 10; page++) {
    const params = new URLSearchParams({ since, limit: "500" });
    if (after) params.set("after", after);
    const result = await api("/audit?" + params);
    events = events.concat(result.items).slice(-AUDIT_TAIL);
    if (!result.next) break;
    after = result.next;
  }
  state.audit = events;
  renderAudit();
}

// ---- live: GET /events read with fetch(), so the Authorization header can go with it ----

const pending = {
  pfs: new Set(), inventory: false, allocations: false, operations: false, reconcile: false, capacity: false,
  quotas: false,
};
let flushTimer = null;

function schedule() {
  if (!flushTimer) flushTimer = setTimeout(flush, 100);
}

async function flush() {
  flushTimer = null;
  const work = [];
  if (pending.inventory) work.push(loadInventory());
  else for (const pf of pending.pfs) work.push(loadPF(pf));
  if (pending.allocations) work.push(loadAllocations());
  if (pending.operations) work.push(loadOperations());
  if (pending.reconcile) work.push(loadReconcile());
  if (pending.capacity) work.push(loadCapacity());
  if (pending.quotas) work.push(loadQuotas());
  pending.pfs.clear();
  pending.inventory = pending.allocations = pending.operations = pending.reconcile = false;
  pending.capacity = pending.quotas = false;
  try {
    await Promise.all(work);
  } catch (error) {
    if (error instanceof Unauthorized) showLogin("The token was refused.");
    else setConnection("refresh failed: " + error.message, "down");
  }
}

function onEvent(type, data) {
  if (type === "reset") {
    pending.inventory = pending.allocations = pending.operations = pending.capacity = pending.quotas = true;
    schedule();
    return;
  }
  if (type === "cutoff") { state.lastEventID = String(data.resume_after); return; }
  if (data.id != null) {
    state.audit.push(data);
    if (state.audit.length > AUDIT_TAIL) state.audit.shift();
    renderAudit();
  }
  if (type.startsWith("hw.")) return;  // each write is followed by the event of what it was for
  if (type.startsWith("pf.appeared") || type.startsWith("pf.vanished")) pending.inventory = true;
  else if (data.pf && state.pfs.has(data.pf)) pending.pfs.add(data.pf);
  else if (type.startsWith("pf.") || type.startsWith("vf.") || type.startsWith("link.")) pending.inventory = true;
  if (type.startsWith("allocation.")) pending.allocations = pending.quotas = true;
  if (type.startsWith("quota.")) pending.quotas = true;
  if (!type.startsWith("operation.") && !type.startsWith("quota.")) pending.capacity = true;
  if (type.startsWith("operation.")) pending.operations = true;
  if (type.startsWith("reconcile.") || type.startsWith("intent.")) { pending.reconcile = true; pending.inventory = true; }
  schedule();
}

function parseFrame(block) {
  let type = "message", data = "", id = null;
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "data") data += (data ? "\n" : "") + value;
    else if (field === "id") id = value;
  }
  return { type, data, id };
}

// `connected` is called once: when the first stream is open (the server has registered the subscription before it
// answers, so nothing that happens after it is missed), or when the first attempt fails.
async function follow(connected = () => {}) {
  let delay = 1000;
  for (;;) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const headers = authHeaders();
      if (state.lastEventID) headers["Last-Event-ID"] = state.lastEventID;
      const response = await fetch("/events", { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401) { connected(false); return; }
      if (!response.ok) throw new Error("events: " + response.status);
      connected(true);
      setConnection("live", "live");
      delay = 1000;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (frame.id) state.lastEventID = frame.id;
          if (!frame.data) continue;
          let data = {};
          try { data = JSON.parse(frame.data); } catch (_) { continue; }
          onEvent(frame.type, data);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    connected(false);
    setConnection("reconnecting", "down");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

// ---- start ----

async function start() {
  $("login").hidden = true;
  setConnection("loading");
  // Follow the events before the first load: what changes while the page loads arrives as an event and reloads.
  await new Promise((resolve) => follow(resolve));
  try {
    await loadInventory();
  } catch (error) {
    if (error instanceof Unauthorized) {
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(had ? "That token was refused." : "");
      return;
    }
    setConnection("could not load: " + error.message, "down");
    return;
  }
  $("main").hidden = false;
  $("forget").hidden = !sessionStorage.getItem(TOKEN_KEY);
  performance.mark("sriovd-grid");
  requestAnimationFrame(() => performance.mark("sriovd-painted"));
  const rest = [loadAllocations(), loadOperations(), loadReconcile(), loadAudit(), loadCapacity(), loadQuotas()];
  await Promise.all(rest).catch((error) => {
    if (error instanceof Unauthorized) showLogin("The token was refused.");
    else setConnection("could not load: " + error.message, "down");
  });
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  wireGrid();
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(""); });
  $("allocation-filter").addEventListener("submit", (e) => { e.preventDefault(); loadAllocations(); });
  start();
});
