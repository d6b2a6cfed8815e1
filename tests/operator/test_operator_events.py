"""Which Events the operator posts for a status change (pure), and their shape."""

from __future__ import annotations

import datetime as dt

import kubernetes_validate

from peertap.operator import conditions, events, models

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def test_condition_changes_become_events_warning_when_false() -> None:
    ready = conditions.make("Ready", True, "Reconciled", "2 members, 2 ready")
    lost = conditions.make("Ready", False, "AuthorityMissing", "Secret lab-authority is missing")
    valid = conditions.make("SpecValid", True, "Valid", "spec is valid")
    assert events.condition_changes([], [valid]) == [
        events.Event("Normal", "Valid", "SpecValid=True: spec is valid")
    ]
    assert events.condition_changes([valid, ready], [valid, lost]) == [
        events.Event("Warning", "AuthorityMissing", "Ready=False: Secret lab-authority is missing")
    ]
    # A message that changes alone (member counts) is no state change.
    busier = conditions.make("Ready", True, "Reconciled", "3 members, 3 ready")
    assert events.condition_changes([ready], [busier]) == []


def test_member_changes_name_the_pods() -> None:
    before = [models.Member(pod="a"), models.Member(pod="b")]
    after = [models.Member(pod="b"), models.Member(pod="c")]
    assert events.member_changes(before, after) == [
        events.Event("Normal", "MembersJoined", "joined: c"),
        events.Event("Normal", "MembersLeft", "left: a"),
    ]
    many = [models.Member(pod=f"p{i:02}") for i in range(12)]
    (joined,) = events.member_changes([], many)
    assert joined.message.endswith("and 2 more")


def test_event_bodies_are_valid_core_v1_events_about_the_object() -> None:
    obj = {
        "apiVersion": "peertap.io/v1alpha1",
        "kind": "CryptoVLAN",
        "metadata": {"name": "lab", "namespace": "team", "uid": "u-1"},
    }
    body = events.body(obj, events.Event("Warning", "AuthorityMissing", "x" * 5000), now=NOW)
    kubernetes_validate.validate(body, "1.31", strict=True)
    assert body["involvedObject"] == {
        "apiVersion": "peertap.io/v1alpha1",
        "kind": "CryptoVLAN",
        "name": "lab",
        "namespace": "team",
        "uid": "u-1",
    }
    assert body["metadata"]["namespace"] == "team" and len(body["message"]) == 1024
