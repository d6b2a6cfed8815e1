"""Built-in lab topologies: pair, relay, star and chain, as `LabSpec` values."""

from __future__ import annotations

from typing import Any

from .spec import BootstrapSpec, LabSpec, LinkSpec, NodeRole, PodSpec

NAMES = ("pair", "relay", "star", "chain")
IPV6_UNDERLAY = "fd31::/48"  # a unique-local network: the lab's IPv6-only underlay

MEMBER = NodeRole(role="member")
RELAY = NodeRole(role="relay")


def pair() -> LabSpec:
    """a - b, both members; a dials b."""
    return LabSpec(
        pods=[PodSpec(name="a", node=MEMBER), PodSpec(name="b", node=MEMBER)],
        links=[LinkSpec(a="a", b="b")],
        bootstrap=[BootstrapSpec(dialer="a", target="b")],
    )


def relay(*, routed: bool = False, relay_node: bool = True) -> LabSpec:
    """a - r - b: a and b reach only r, which runs a pure relay both dial.

    `routed` makes r forward IP between a and b. Without `relay_node`, r runs no
    peertap, forwards IP, and a dials b directly across it.
    """
    if not relay_node:
        return LabSpec(
            pods=[
                PodSpec(name="a", node=MEMBER),
                PodSpec(name="r", ip_forward=True),
                PodSpec(name="b", node=MEMBER),
            ],
            links=[LinkSpec(a="a", b="r"), LinkSpec(a="r", b="b")],
            bootstrap=[BootstrapSpec(dialer="a", target="b")],
        )
    return LabSpec(
        pods=[
            PodSpec(name="a", node=MEMBER),
            PodSpec(name="r", ip_forward=routed, node=RELAY),
            PodSpec(name="b", node=MEMBER),
        ],
        links=[LinkSpec(a="a", b="r"), LinkSpec(a="r", b="b")],
        bootstrap=[BootstrapSpec(dialer="a", target="r"), BootstrapSpec(dialer="b", target="r")],
    )


def star(*, members: int = 3) -> LabSpec:
    """m1..mN around one pure relay r; each member dials r."""
    if not 1 <= members <= 200:
        raise ValueError("a star has 1 to 200 members")
    names = [f"m{i}" for i in range(1, members + 1)]
    return LabSpec(
        pods=[PodSpec(name="r", node=RELAY)] + [PodSpec(name=n, node=MEMBER) for n in names],
        links=[LinkSpec(a=n, b="r") for n in names],
        bootstrap=[BootstrapSpec(dialer=n, target="r") for n in names],
    )


def chain() -> LabSpec:
    """a - r1 - r2 - b: two pure relays in a row; a dials r1, r1 dials r2, b dials r2."""
    return LabSpec(
        pods=[
            PodSpec(name="a", node=MEMBER),
            PodSpec(name="r1", node=RELAY),
            PodSpec(name="r2", node=RELAY),
            PodSpec(name="b", node=MEMBER),
        ],
        links=[LinkSpec(a="a", b="r1"), LinkSpec(a="r1", b="r2"), LinkSpec(a="r2", b="b")],
        bootstrap=[
            BootstrapSpec(dialer="a", target="r1"),
            BootstrapSpec(dialer="r1", target="r2"),
            BootstrapSpec(dialer="b", target="r2"),
        ],
    )


def on_underlay(spec: LabSpec, base: str) -> LabSpec:
    """`spec` with its link subnets cut from `base`, at the default link size of its family
    (e.g. `IPV6_UNDERLAY` for an IPv6-only underlay)."""
    return LabSpec.model_validate(
        {**spec.model_dump(exclude={"link_prefixlen"}), "underlay_base": base}
    )


def topology(name: str, *, underlay: str | None = None, **options: Any) -> LabSpec:
    """A built-in topology by name, e.g. `topology("relay", routed=True)`; `underlay` names
    another network for its links, e.g. `topology("relay", underlay=IPV6_UNDERLAY)`."""
    if name == "pair":
        spec = pair(**options)
    elif name == "relay":
        spec = relay(**options)
    elif name == "star":
        spec = star(**options)
    elif name == "chain":
        spec = chain(**options)
    else:
        raise ValueError(f"unknown topology {name!r}; choose one of {', '.join(NAMES)}")
    return spec if underlay is None else on_underlay(spec, underlay)
