"""The forwarder's sending: what a send function refuses is handed back for later,
neither counted nor lost; what it carries is counted once."""

from __future__ import annotations

from peertap.sidecar.counters import Counters
from peertap.sidecar.forwarding import Forwarder
from peertap.sidecar.switch.acl import Acl
from peertap.sidecar.switch.routes import RouteTable


def forwarder(counters: Counters, sent: dict[str, list[bytes]]) -> Forwarder:
    def send(peer: str, packets: list[bytes]) -> bool:
        sent.setdefault(peer, []).extend(packets)
        return True

    return Forwarder(
        ports={},
        routes=RouteTable(ttl_s=60.0),
        acl=Acl(mode="open"),
        relay=False,
        counters=counters,
        send=send,
        trace=None,
    )


def test_send_now_hands_back_what_the_datagram_path_refuses_and_counts_what_it_sends() -> None:
    counters = Counters()
    stream: dict[str, list[bytes]] = {}
    fwd = forwarder(counters, stream)
    carried: dict[str, list[bytes]] = {}

    def datagrams(peer: str, packets: list[bytes]) -> bool:
        if peer == "no-path":
            return False
        carried[peer] = list(packets)
        return True

    batches = {"up": [b"1", b"2"], "no-path": [b"3"], "also-up": [b"4"]}
    later = fwd.send_now(batches, "tx", datagrams)

    assert carried == {"up": [b"1", b"2"], "also-up": [b"4"]}
    assert later == {"no-path": [b"3"]}
    assert counters.events["tx_packets"] == 3
    assert not counters.drops
    # What came back then goes out on the stream, counted there.
    fwd.send_batches(later, "tx")
    assert stream == {"no-path": [b"3"]}
    assert counters.events["tx_packets"] == 4
