// The node page: polls /ui/view.json every 2 seconds and renders it. Read-only, except
// for join/leave buttons on VLANs when the view allows them (api.vlan_control, asked
// from the node's own host). Every value is written with textContent, never as HTML.

import { drawTopology, shortId } from "./topology.js";

const POLL_MS = 2000;
let previous = null;
let timer = null;

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows);
}

function rate(bytesNow, bytesBefore, seconds) {
  if (bytesNow == null || bytesBefore == null || !(seconds > 0)) return "—";
  const bits = ((bytesNow - bytesBefore) * 8) / seconds;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(2)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(1)} kbit/s`;
  return `${bits.toFixed(0)} bit/s`;
}

function memberNodes(v, view) {
  const ids = new Set(v.member_nodes || []);
  return view.topology.nodes.filter((n) => ids.has(n.id));
}

async function vlanAction(v, action, button) {
  const error = document.getElementById("error");
  button.disabled = true;
  try {
    const resp = await fetch(`/ui/vlans/${encodeURIComponent(v.vlan_id)}/${action}`, {
      method: "POST",
      cache: "no-store",
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body.error || `HTTP ${resp.status}`);
    }
    error.hidden = true;
    clearTimeout(timer);
    await poll();
  } catch (err) {
    error.textContent = `cannot ${action} VLAN ${v.label}: ${err.message}`;
    error.hidden = false;
    button.disabled = false;
  }
}

function stateCell(tr, v) {
  const td = cell(tr, v.joined ? "joined" : "left");
  if (!v.controllable) return;
  const action = v.joined ? "leave" : "join";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "vlan-action";
  button.dataset.action = action;
  button.textContent = action;
  button.addEventListener("click", () => vlanAction(v, action, button));
  td.append(button);
}

function vlanRow(v, view) {
  const tr = document.createElement("tr");
  tr.dataset.vlan = v.label;
  tr.dataset.joined = String(v.joined);
  if (!v.joined) tr.className = "left";
  cell(tr, v.label);
  cell(tr, v.interface, "mono");
  cell(tr, v.mac, "mono");
  cell(tr, v.address, "mono");
  cell(tr, v.security).title = v.readable_by || "";
  cell(tr, v.epoch, "num");
  cell(tr, v.mls_id, "mono").title = v.mls_id || "";
  const members = cell(tr, "");
  members.className = "members";
  const list = document.createElement("ul");
  list.className = "members";
  const self = document.createElement("li");
  self.textContent = `this node ${shortId(view.node.peer_id || "?")}`;
  self.dataset.peer = view.node.peer_id || "";
  list.append(self);
  for (const n of memberNodes(v, view)) {
    const li = document.createElement("li");
    li.textContent = `${shortId(n.id)} (${n.distance} hop${n.distance === 1 ? "" : "s"})`;
    li.title = n.id;
    li.dataset.peer = n.id;
    list.append(li);
  }
  members.replaceChildren(list);
  if (v.members != null) {
    const note = document.createElement("div");
    note.className = "muted";
    note.textContent = `MLS group: ${v.members} members (${v.mls_state})`;
    members.append(note);
  }
  cell(tr, `tokens ${v.wanted_tokens ?? "—"}, MACs ${v.learned_macs ?? "—"}, groups ${(v.groups || []).length}`);
  stateCell(tr, v);
  return tr;
}

function trunkRow(t, view, roles) {
  const tr = document.createElement("tr");
  tr.dataset.peer = t.peer;
  cell(tr, shortId(t.peer), "mono").title = t.peer;
  cell(tr, roles.get(t.peer) || "—");
  cell(tr, t.transport ?? `${view.node.transports.join(", ") || "—"} (node)`);
  cell(tr, t.rtt_ms == null ? "not measured" : `${t.rtt_ms} ms`);
  const before = previous && previous.trunks.find((p) => p.peer === t.peer);
  const dt = previous ? view.time - previous.time : 0;
  cell(tr, rate(t.bytes_sent, before && before.bytes_sent, dt), "num");
  cell(tr, rate(t.bytes_received, before && before.bytes_received, dt), "num");
  cell(tr, t.records_sent == null ? "—" : `${t.records_sent} / ${t.records_received}`, "num");
  cell(tr, t.queued_bytes, "num");
  cell(tr, t.drops, "num");
  return tr;
}

function render(view) {
  document.getElementById("node-id").textContent = view.node.peer_id || "?";
  const relay = view.node.relay.enabled ? `relay (ACL ${view.node.relay.acl})` : "not a relay";
  document.getElementById("node-line").textContent =
    `${view.node.ready ? "ready" : "not ready"} · version ${view.node.version}` +
    ` (protocol ${view.node.protocol ?? "?"}) · admission ${view.node.admission ?? "?"} · ${relay} · ` +
    `listening on ${view.node.listen.join(", ") || "—"}`;
  fill("vlans", view.vlans.map((v) => vlanRow(v, view)));
  document.getElementById("vlan-note").textContent = view.controls.join_leave
    ? "This node's config lets this page join and leave its public and psk VLANs."
    : "Read-only: joining or leaving a VLAN is done in the node's config.";
  const roles = new Map(view.topology.nodes.map((n) => [n.id, n.role]));
  fill("trunks", view.trunks.map((t) => trunkRow(t, view, roles)));
  drawTopology(document.getElementById("topology"), view.topology);
  const drops = Object.entries(view.drops).sort((a, b) => b[1] - a[1]);
  fill("drops", drops.map(([reason, n]) => {
    const tr = document.createElement("tr");
    tr.dataset.reason = reason;
    cell(tr, reason, "mono");
    cell(tr, n, "num");
    return tr;
  }));
  document.body.dataset.loaded = "true";
}

async function poll() {
  const error = document.getElementById("error");
  try {
    const resp = await fetch("/ui/view.json", { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const view = await resp.json();
    render(view);
    previous = view;
    error.hidden = true;
  } catch (err) {
    error.textContent = `cannot read the node's view: ${err}`;
    error.hidden = false;
  }
  clearTimeout(timer);
  timer = setTimeout(poll, POLL_MS);
}

poll();
