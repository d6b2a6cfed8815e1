"""PeerTap Kubernetes operator: kopf handlers, admission webhooks, rendering."""
