// Draws the mesh this node knows as SVG: this node in the centre, nodes on rings by
// distance (trunk hops). A plain, deterministic layout: the same view gives the same picture.

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function shortId(id) {
  return id.length <= 12 ? id : "…" + id.slice(-8);
}

function polar(angle, radius) {
  return [radius * Math.cos(angle) * 1.25, radius * Math.sin(angle)];
}

// This node in the centre, trunk peers evenly on the first ring, and every node further
// away on an outer ring (by distance) in the sector of the neighbour it is reached through.
function layout(topology) {
  const pos = new Map();
  const angles = new Map();
  const direct = topology.nodes.filter((n) => n.distance === 1);
  const far = topology.nodes.filter((n) => n.distance > 1);
  const deepest = Math.max(1, ...topology.nodes.map((n) => n.distance));
  const step = Math.min(140, 270 / deepest);
  for (const n of topology.nodes.filter((x) => x.distance === 0)) pos.set(n.id, [0, 0]);
  direct.forEach((n, i) => {
    const angle = (2 * Math.PI * i) / direct.length - Math.PI / 2;
    angles.set(n.id, angle);
    pos.set(n.id, polar(angle, step));
  });
  const groups = new Map();
  for (const n of far) {
    const key = n.via && angles.has(n.via) ? n.via : "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(n);
  }
  const sector = (2 * Math.PI) / Math.max(direct.length, 1);
  for (const [via, nodes] of groups) {
    nodes.forEach((n, i) => {
      const angle = via
        ? angles.get(via) + sector * 0.7 * ((i + 0.5) / nodes.length - 0.5)
        : (2 * Math.PI * i) / nodes.length + Math.PI / 4;
      pos.set(n.id, polar(angle, step * n.distance));
    });
  }
  return pos;
}

export function drawTopology(svg, topology) {
  const pos = layout(topology);
  svg.replaceChildren();
  for (const e of topology.edges) {
    const [a, b] = [pos.get(e.a), pos.get(e.b)];
    if (!a || !b) continue;
    const line = el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: e.kind,
                              "data-a": e.a, "data-b": e.b });
    svg.append(line);
    if (e.kind === "path") {
      svg.append(el("text", { x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2 - 4,
                              class: "edge-label" }, `${e.hops} hops`));
    }
  }
  for (const n of topology.nodes) {
    const [x, y] = pos.get(n.id) || [0, 0];
    const g = el("g", { class: `node ${n.distance === 0 ? "self" : n.role}`, "data-peer": n.id });
    g.append(el("title", {}, `${n.id}\n${n.role}${n.tokens != null ? `, ${n.tokens} tokens` : ""}`));
    g.append(el("circle", { cx: x, cy: y, r: n.distance === 0 ? 16 : 12 }));
    const label = n.distance === 0 ? `this node ${shortId(n.id)}` : `${n.role} ${shortId(n.id)}`;
    g.append(el("text", { x, y: y + 28 }, label));
    svg.append(g);
  }
}
