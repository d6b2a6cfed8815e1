"""The cluster page's document, reduced from API objects as plain functions."""

from __future__ import annotations

from typing import Any

from peertap.operator import cluster_view


def ev(kind: str, name: str, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": f"{name}.1"},
        "involvedObject": {"kind": kind, "name": name},
        "reason": "Reconciled",
        "message": "ok",
        "lastTimestamp": when,
        **extra,
    }


def test_recent_events_keep_only_peertap_kinds_newest_first() -> None:
    events = [
        ev("CryptoVLAN", "lab", "2026-01-01T00:00:02Z"),
        ev("Pod", "web", "2026-01-01T00:00:03Z"),
        ev("MVLAN", "campus", "2026-01-01T00:00:05Z", type="Warning", count=3),
    ]
    got = cluster_view.recent_events(events)
    assert [(e["kind"], e["name"], e["count"]) for e in got] == [
        ("MVLAN", "campus", 3),
        ("CryptoVLAN", "lab", 1),
    ]


def test_at_most_max_events_are_kept() -> None:
    events = [
        ev("CryptoVLAN", "lab", f"2026-01-01T00:{i // 60:02}:{i % 60:02}Z") for i in range(80)
    ]
    got = cluster_view.recent_events(events)
    assert len(got) == cluster_view.MAX_EVENTS
    assert got[0]["time"] == "2026-01-01T00:01:19Z"


def test_a_cryptovlan_shows_members_readiness_and_no_unlisted_field() -> None:
    obj = {
        "metadata": {"name": "lab", "namespace": "ns"},
        "spec": {"security": "mls", "mvlanRef": {"name": "campus"}, "secretThing": "x"},
        "status": {
            "vlanId": "ab" * 16,
            "epoch": 4,
            "members": [{"pod": "a", "ready": True}, {"pod": "b", "ready": False}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}],
            "privateKey": "must-not-show",
        },
    }
    row = cluster_view.cryptovlan(obj)
    assert (row["label"], row["mvlan"], row["epoch"], row["readyMembers"]) == (
        "lab",
        "campus",
        4,
        1,
    )
    assert row["ready"] == "True"
    assert "must-not-show" not in str(row) and "secretThing" not in str(row)


def test_a_half_reconciled_mvlan_still_renders() -> None:
    row = cluster_view.mvlan({"metadata": {"name": "campus", "namespace": "ns"}})
    assert row["relayAddresses"] == [] and row["ready"] == "Unknown" and row["relays"] == 1
