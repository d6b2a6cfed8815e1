"""What the sidecars themselves report: fetch GET /status from pods, reduce it to resource status.

Each sidecar (members and relays alike) serves its node's snapshot on port
9464 (`peertap.sidecar.api`). The operator reads it during the periodic resync
only: one short request per pod, a bounded number at a time, and a pod that
does not answer (not started, crashed, network policy) is simply not counted.
Nothing here raises because a sidecar is unreachable or talks nonsense.

Fetching is the only I/O; parsing and the reductions (`vlan_consensus`,
`peers_seen`) are pure functions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

# The sidecar API's port in pods (node.json api.listen 0.0.0.0:9464, also the readiness probe).
API_PORT = 9464
TIMEOUT_S = 2.0
CONCURRENCY = 16
MAX_BODY = 1 << 20


class ReportError(Exception):
    """A /status answer that is not a sidecar's status document."""


@dataclass(frozen=True)
class VlanReport:
    """One VLAN's group state as a sidecar sees it."""

    vlan_id: str
    epoch: int
    mls_id: str


@dataclass(frozen=True)
class Report:
    """The parts of a sidecar's /status the operator uses."""

    peer_id: str
    peers: frozenset[str] = frozenset()
    vlans: Mapping[str, VlanReport] = field(default_factory=dict)


def parse_report(doc: Any) -> Report:
    """Read a /status document; ReportError when a field the operator needs is malformed."""
    if not isinstance(doc, dict):
        raise ReportError(f"expected a JSON object, got {type(doc).__name__}")
    peer_id = doc.get("peer_id")
    peers = doc.get("peers", [])
    vlans = doc.get("vlans", [])
    if not isinstance(peer_id, str) or not peer_id:
        raise ReportError("peer_id is missing")
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        raise ReportError("peers is not a list of peer ids")
    if not isinstance(vlans, list):
        raise ReportError("vlans is not a list")
    out: dict[str, VlanReport] = {}
    for entry in vlans:
        if not isinstance(entry, dict):
            raise ReportError("a vlans entry is not an object")
        vlan_id, epoch, mls_id = entry.get("vlan_id"), entry.get("epoch"), entry.get("mls_id")
        # bool is an int subclass; an epoch of `true` is nonsense, not 1.
        if not isinstance(vlan_id, str) or not isinstance(mls_id, str):
            raise ReportError("a vlans entry lacks vlan_id or mls_id")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ReportError(f"VLAN {vlan_id}: epoch {epoch!r} is not a non-negative integer")
        out[vlan_id] = VlanReport(vlan_id=vlan_id, epoch=epoch, mls_id=mls_id)
    return Report(peer_id=peer_id, peers=frozenset(peers), vlans=out)


def pod_ip(pod: Mapping[str, Any]) -> str | None:
    """The pod's IP (status.podIP), None while it has none or is terminating."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip else None


def status_url(ip: str, port: int = API_PORT) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}/status"


async def _fetch_one(session: aiohttp.ClientSession, url: str) -> Report:
    async with session.get(url) as response:
        if response.status != 200:
            raise ReportError(f"HTTP {response.status}")
        body = await response.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise ReportError(f"answer larger than {MAX_BODY} bytes")
        try:
            doc = json.loads(body)
        except ValueError as err:
            raise ReportError(f"not JSON: {err}") from err
    return parse_report(doc)


async def fetch_reports(
    targets: Mapping[str, str],
    *,
    port: int = API_PORT,
    timeout_s: float = TIMEOUT_S,
    concurrency: int = CONCURRENCY,
) -> dict[str, Report]:
    """GET /status from each target (key -> IP); the reports of those that answered, by key."""
    if not targets:
        return {}
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    out: dict[str, Report] = {}

    async def one(session: aiohttp.ClientSession, key: str, ip: str) -> None:
        url = status_url(ip, port)
        async with gate:
            try:
                out[key] = await _fetch_one(session, url)
            except (aiohttp.ClientError, TimeoutError, ReportError) as err:
                log.debug("no sidecar report from %s (%s): %s", key, url, err or type(err).__name__)

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(one(session, k, ip) for k, ip in targets.items()))
    return out


def vlan_consensus(reports: Iterable[VlanReport]) -> VlanReport | None:
    """The (epoch, MLS-ID) most members report; on a tie the newest epoch. None: no report."""
    votes = Counter((r.vlan_id, r.epoch, r.mls_id) for r in reports)
    if not votes:
        return None
    (vlan_id, epoch, mls_id), _ = max(votes.items(), key=lambda kv: (kv[1], kv[0][1], kv[0][2]))
    return VlanReport(vlan_id=vlan_id, epoch=epoch, mls_id=mls_id)


def peers_seen(reports: Iterable[Report], *, exclude: Iterable[str] = ()) -> int:
    """Distinct peers the reporting nodes have trunks to, not counting the reporters themselves
    (relays of one MVLAN may be peers of each other) nor `exclude`."""
    reports = list(reports)
    own = {r.peer_id for r in reports} | set(exclude)
    seen: set[str] = set()
    for r in reports:
        seen |= r.peers
    return len(seen - own)
