// The cluster page: polls /ui/cluster.json every 5 seconds and renders it. Read-only.
// Every value is written with textContent, never as HTML.

const POLL_MS = 5000;

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function conditionsCell(row, conditions) {
  const td = cell(row, "");
  td.replaceChildren(...conditions.map((c) => {
    const div = document.createElement("div");
    div.className = `cond-${c.status}`;
    div.textContent = `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ""}`;
    div.title = c.message;
    return div;
  }));
  if (!conditions.length) td.textContent = "—";
}

function fill(id, rows) {
  document.querySelector(`#${id} tbody`).replaceChildren(...rows);
}

function render(doc) {
  const scope = doc.namespaces.length ? `namespaces ${doc.namespaces.join(", ")}` : "all namespaces";
  document.getElementById("scope").textContent =
    `${scope} · ${doc.cryptoVLANs.length} CryptoVLANs · ${doc.mvlans.length} MVLANs`;
  document.getElementById("errors").replaceChildren(...doc.errors.map((e) => {
    const li = document.createElement("li");
    li.textContent = `unavailable: ${e}`;
    return li;
  }));
  fill("cryptovlans", doc.cryptoVLANs.map((v) => {
    const tr = document.createElement("tr");
    tr.dataset.name = `${v.namespace}/${v.name}`;
    cell(tr, v.namespace);
    cell(tr, v.name);
    cell(tr, v.label);
    cell(tr, v.security);
    cell(tr, v.vlanId, "mono");
    cell(tr, v.epoch);
    cell(tr, v.mlsId, "mono");
    cell(tr, v.mvlan);
    cell(tr, `${v.members.length} (${v.readyMembers})`);
    conditionsCell(tr, v.conditions);
    return tr;
  }));
  fill("members", doc.cryptoVLANs.flatMap((v) => v.members.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.pod = `${v.namespace}/${m.pod}`;
    cell(tr, `${v.namespace}/${v.name}`);
    cell(tr, m.pod);
    cell(tr, m.node);
    cell(tr, m.address, "mono");
    cell(tr, m.mac, "mono");
    cell(tr, m.ready ? "ready" : "not ready", m.ready ? "cond-True" : "cond-False");
    cell(tr, m.epoch);
    cell(tr, m.mlsId, "mono");
    return tr;
  })));
  fill("mvlans", doc.mvlans.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.name = `${m.namespace}/${m.name}`;
    cell(tr, m.namespace);
    cell(tr, m.name);
    cell(tr, m.relays);
    cell(tr, m.serviceType);
    const addrs = cell(tr, "", "mono");
    addrs.replaceChildren(...m.relayAddresses.map((a) => {
      const div = document.createElement("div");
      div.textContent = a;
      return div;
    }));
    if (!m.relayAddresses.length) addrs.textContent = "—";
    cell(tr, m.peersSeen);
    cell(tr, m.cryptoVLANs.join(", "));
    conditionsCell(tr, m.conditions);
    return tr;
  }));
  fill("events", doc.events.map((e) => {
    const tr = document.createElement("tr");
    tr.className = e.type;
    cell(tr, e.time, "mono");
    cell(tr, e.type);
    cell(tr, `${e.kind} ${e.namespace}/${e.name}`);
    cell(tr, e.reason);
    cell(tr, e.message);
    cell(tr, e.count);
    return tr;
  }));
  document.body.dataset.loaded = "true";
}

async function poll() {
  try {
    const resp = await fetch("/ui/cluster.json", { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    render(await resp.json());
  } catch (err) {
    const li = document.createElement("li");
    li.textContent = `cannot read the cluster view: ${err}`;
    document.getElementById("errors").replaceChildren(li);
  }
  setTimeout(poll, POLL_MS);
}

poll();
