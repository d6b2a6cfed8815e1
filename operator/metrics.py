"""Prometheus metrics of the operator (served by `servers` on --metrics-listen)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECONCILES = Counter(
    "peertap_operator_reconciles",
    "Reconcile runs, by resource kind and result.",
    ["kind", "result"],
)
ERRORS = Counter(
    "peertap_operator_errors",
    "Errors while reconciling, by resource kind and error type.",
    ["kind", "error"],
)
MEMBERS = Gauge(
    "peertap_operator_vlan_members",
    "Member pods of a CryptoVLAN.",
    ["namespace", "cryptovlan"],
)
READY_MEMBERS = Gauge(
    "peertap_operator_vlan_ready_members",
    "Member pods of a CryptoVLAN whose sidecar is ready.",
    ["namespace", "cryptovlan"],
)
ADMISSIONS = Counter(
    "peertap_operator_admissions",
    "Admission reviews answered, by webhook path and verdict.",
    ["path", "verdict"],
)
