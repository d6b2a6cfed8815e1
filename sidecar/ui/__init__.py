"""The node's web UI: a view of the /status snapshot and its static page; read-only
unless `api.vlan_control` lets it join and leave VLANs (`routes`, `..vlan_control`).

`graph` turns a status document into the mesh as this node knows it (also used by
`peertap topology`), `view` reduces a status document to the fields the page shows
(never keys), `routes` serves both under /ui/ on the node's API listener.
"""
