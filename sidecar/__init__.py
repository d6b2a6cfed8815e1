"""PeerTap node: data plane (TAP, switch, crypto, trunk), MLS, mesh, API and CLI."""

__version__ = "0.1.0"
