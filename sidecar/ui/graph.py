"""The mesh as one node knows it, from its /status document: nodes, trunks, paths.

Direct trunk peers come from `peers`; nodes further away come from `origins`
(one entry per origin node and VLAN: the tokens it announces, the neighbour its
best route goes through, and the announcement's distance, which counts the
relays between: 0 for a trunk peer's own announcement, so trunk hops = distance
+ 1). A direct peer that announces no tokens only forwards: it is shown as a
relay. The relays between a neighbour and a far origin are not named in the
status, so that edge is a path of N hops.

Pure functions on plain data; `to_text` and `to_dot` print it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SELF = "self"
RELAY = "relay"
MEMBER = "member"


@dataclass(frozen=True)
class Node:
    id: str
    role: str  # self | relay | member
    distance: int
    direct: bool
    tokens: int | None = None
    via: str | None = None
    vlans: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    hops: int  # 1: a trunk; more: a path whose relays are not known here

    @property
    def kind(self) -> str:
        return "trunk" if self.hops == 1 else "path"


@dataclass(frozen=True)
class Topology:
    self_id: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "self": self.self_id,
            "nodes": [{**vars(n), "vlans": list(n.vlans)} for n in self.nodes],
            "edges": [{"a": e.a, "b": e.b, "hops": e.hops, "kind": e.kind} for e in self.edges],
        }


def _self_role(doc: Mapping[str, Any]) -> str:
    relay = doc.get("relay") or {}
    if doc.get("vlans"):
        return SELF
    return RELAY if isinstance(relay, Mapping) and relay.get("enabled") else SELF


@dataclass
class _Origin:
    hops: int
    via: str | None
    tokens: int = 0
    vlans: list[str] = field(default_factory=list)


def _origins(doc: Mapping[str, Any], me: str) -> dict[str, _Origin]:
    """Origin nodes by peer ID, their VLAN entries merged; hops over the best entry."""
    out: dict[str, _Origin] = {}
    for o in doc.get("origins") or []:
        if not isinstance(o, Mapping) or not isinstance(o.get("node"), str) or o["node"] == me:
            continue
        hops = int(o.get("distance") or 0) + 1
        via = o.get("via") if isinstance(o.get("via"), str) else None
        found = out.setdefault(o["node"], _Origin(hops=hops, via=via))
        if hops < found.hops:
            found.hops, found.via = hops, via
        found.tokens += int(o.get("tokens") or 0)
        vlan_id = o.get("vlan_id")
        if isinstance(vlan_id, str) and vlan_id not in found.vlans:
            found.vlans.append(vlan_id)
    return out


def from_status(doc: Mapping[str, Any]) -> Topology:
    """The topology in a node's status document (missing fields mean: not known)."""
    me = str(doc.get("peer_id") or "?")
    peers = sorted(str(p) for p in doc.get("peers") or [])
    origins = _origins(doc, me)
    nodes = [Node(id=me, role=_self_role(doc), distance=0, direct=False)]
    edges: list[Edge] = []
    for peer in peers:
        o = origins.get(peer)
        role = MEMBER if o is not None and o.tokens else RELAY
        nodes.append(
            Node(
                id=peer,
                role=role,
                distance=1,
                direct=True,
                tokens=o.tokens if o is not None else None,
                vlans=tuple(o.vlans) if o is not None else (),
            )
        )
        edges.append(Edge(a=me, b=peer, hops=1))
    for node_id in sorted(origins, key=lambda n: (origins[n].hops, n)):
        if node_id in peers:
            continue
        o = origins[node_id]
        via = o.via if o.via in peers else None
        nodes.append(
            Node(
                id=node_id,
                role=MEMBER,
                distance=o.hops,
                direct=False,
                tokens=o.tokens,
                via=via,
                vlans=tuple(o.vlans),
            )
        )
        if via is not None:
            edges.append(Edge(a=via, b=node_id, hops=max(o.hops - 1, 1)))
        else:
            edges.append(Edge(a=me, b=node_id, hops=o.hops))
    return Topology(self_id=me, nodes=nodes, edges=edges)


def _describe(n: Node) -> str:
    parts = ["this node"] if n.distance == 0 else [n.role]
    if n.distance == 0 and n.role == RELAY:
        parts.append(RELAY)
    if n.direct:
        parts.append("trunk")
    elif n.distance > 0:
        parts.append(f"{n.distance} hops")
    if n.tokens is not None:
        parts.append(f"{n.tokens} tokens")
    return ", ".join(parts)


def to_text(t: Topology) -> str:
    """A tree: this node, its trunk peers, and under each the origins reached through it."""
    lines = [f"{t.self_id} ({_describe(t.nodes[0])})"]
    children: dict[str, list[Edge]] = {}
    for e in t.edges:
        children.setdefault(e.a, []).append(e)

    def walk(parent: str, prefix: str) -> None:
        kids = children.get(parent, [])
        for i, e in enumerate(kids):
            last = i == len(kids) - 1
            n = t.node(e.b)
            desc = _describe(n) if n is not None else "?"
            if e.kind == "path":
                desc += f", via a {e.hops}-hop path"
            lines.append(f"{prefix}{'└── ' if last else '├── '}{e.b} ({desc})")
            if e.b != t.self_id:
                walk(e.b, prefix + ("    " if last else "│   "))

    walk(t.self_id, "")
    return "\n".join(lines) + "\n"


def short(peer_id: str) -> str:
    """A peer ID shortened for drawings: its last 8 characters."""
    return peer_id if len(peer_id) <= 12 else "…" + peer_id[-8:]


def _quote(s: str) -> str:
    escaped = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_SHAPES = {SELF: "doublecircle", RELAY: "box", MEMBER: "ellipse"}


def to_dot(t: Topology) -> str:
    """Graphviz DOT: trunks solid, multi-hop paths dashed and labelled with their hop count."""
    out = ["graph peertap {", "  node [fontname=monospace];"]
    for n in t.nodes:
        label = f"{short(n.id)}\n{_describe(n)}"
        out.append(
            f"  {_quote(n.id)} [label={_quote(label)}, shape={_SHAPES.get(n.role, 'ellipse')},"
            f" tooltip={_quote(n.id)}];"
        )
    for e in t.edges:
        style = "" if e.kind == "trunk" else f" [style=dashed, label={_quote(f'{e.hops} hops')}]"
        out.append(f"  {_quote(e.a)} -- {_quote(e.b)}{style};")
    out.append("}")
    return "\n".join(out) + "\n"
