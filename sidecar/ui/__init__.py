"""The node's web UI: a read-only view of the /status snapshot, and its static page.

`graph` turns a status document into the mesh as this node knows it (also used by
`peertap topology`), `view` reduces a status document to the fields the page shows
(never keys), `routes` serves both under /ui/ on the node's API listener.
"""
