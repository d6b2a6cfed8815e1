"""The datagram path: PeerTap DATA packets in UDP datagrams between trunk peers.

Keys come from an HPKE exchange on the peer's authenticated trunk stream (keys.py);
datagrams are sealed per session (session.py), batched with UDP GSO/GRO (udp.py) and
sized by a probed path MTU (path.py); channel.py ties it together for the trunk, which
falls back to its stream whenever the datagram path is not up.
"""

from .channel import DatagramChannel
from .codec import MalformedDatagram, is_path_record

__all__ = ["DatagramChannel", "MalformedDatagram", "is_path_record"]
