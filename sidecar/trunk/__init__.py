"""Trunks: encrypted libp2p links between PeerTap nodes that carry PeerTap records.

`Trunk` keeps one `/peertap/trunk/2.0.0` stream per peer (TCP or WebSocket,
Noise or TLS, Yamux) and tells the node layer about it through `TrunkEvents`.
"""

from .base import PROTOCOL_ID, TrunkConfigError, TrunkError, TrunkEvents, TrunkSettings
from .libp2p_trunk import Trunk, TrunkNotRunningError
from .records import MAX_RECORD, TrunkProtocolError, TrunkRecordError

__all__ = [
    "MAX_RECORD",
    "PROTOCOL_ID",
    "Trunk",
    "TrunkConfigError",
    "TrunkError",
    "TrunkEvents",
    "TrunkNotRunningError",
    "TrunkProtocolError",
    "TrunkRecordError",
    "TrunkSettings",
]
