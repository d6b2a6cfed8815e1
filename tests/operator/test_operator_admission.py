"""Admission decisions: the sidecar JSONPatch and the validation verdicts, as plain functions."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch
import pytest

from peertap.operator import admission, models, podspec

LAB = [admission.VlanSelector(name="lab", selector=models.LabelSelector(match_labels={"a": "b"}))]


def _pod(labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"generateName": "x-", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }
    for k, v in extra.items():
        pod[k].update(v)
    return pod


def _apply(pod: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(jsonpatch.apply_patch(pod, ops))


def test_labelled_pod_gets_sidecar_volumes_and_member_key() -> None:
    pod = _pod({"peertap.io/vlans": "lab"})
    ops = admission.mutate_pod(pod, vlans=[], image="img:1", new_key=lambda: "k1")
    out = _apply(pod, ops)
    assert out["metadata"]["annotations"] == {"peertap.io/member": "k1"}
    # A native sidecar: the first init container, running for the pod's whole life.
    (app,) = out["spec"]["containers"]
    (sidecar,) = out["spec"]["initContainers"]
    assert app["name"] == "app"
    assert sidecar["name"] == "peertap" and sidecar["image"] == "img:1"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/readyz", "port": 9464}
    # Least privilege: everything dropped but what setpriv needs to become user 65532
    # keeping NET_ADMIN alone; peertap itself runs unprivileged.
    ctx = sidecar["securityContext"]
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SETGID", "SETUID"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
    assert sidecar["command"][:2] == ["setpriv", "--reuid=65532"]
    assert sidecar["command"][-4:] == ["peertap", "run", "--config", "/etc/peertap/node.json"]
    assert sidecar["resources"]["limits"]["memory"] == "320Mi"
    mounts = {m["mountPath"] for m in sidecar["volumeMounts"]}
    assert mounts == {"/etc/peertap", "/dev/net/tun"}
    assert [v["name"] for v in out["spec"]["volumes"]] == ["peertap-config", "peertap-tun"]


def test_selector_match_injects_and_other_pods_are_left_alone() -> None:
    assert admission.mutate_pod(_pod({"a": "b"}), vlans=LAB, image="i")
    assert admission.mutate_pod(_pod({"a": "c"}), vlans=LAB, image="i") == []
    assert admission.mutate_pod(_pod({}), vlans=[], image="i") == []


def test_existing_volumes_and_annotations_are_extended_not_replaced() -> None:
    pod = _pod(
        {"peertap.io/vlans": "lab"},
        metadata={"annotations": {"keep": "me", "peertap.io/member": "given"}},
        spec={"volumes": [{"name": "data", "emptyDir": {}}]},
    )
    out = _apply(pod, admission.mutate_pod(pod, vlans=[], image="i", new_key=lambda: "unused"))
    assert out["metadata"]["annotations"] == {"keep": "me", "peertap.io/member": "given"}
    assert [v["name"] for v in out["spec"]["volumes"]] == ["data", "peertap-config", "peertap-tun"]
    sources = out["spec"]["volumes"][1]["projected"]["sources"]
    assert sources[0] == {"configMap": {"name": "peertap-m-given"}}


def test_pod_that_already_has_the_sidecar_is_not_patched_twice() -> None:
    pod = _pod({"peertap.io/vlans": "lab"})
    out = _apply(pod, admission.mutate_pod(pod, vlans=[], image="i"))
    assert admission.mutate_pod(out, vlans=[], image="i") == []


def test_relay_pods_are_never_injected() -> None:
    pod = _pod({"a": "b", "peertap.io/role": "relay"})
    assert admission.mutate_pod(pod, vlans=LAB, image="i") == []


def test_response_encodes_patch_and_denials() -> None:
    ops = [{"op": "add", "path": "/x", "value": 1}]
    allowed = admission.response({"uid": "u1"}, patch=ops)["response"]
    assert allowed["allowed"] is True and allowed["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(allowed["patch"])) == ops
    denied = admission.response({"uid": "u2"}, denials=["a", "b"])["response"]
    assert denied == {
        "uid": "u2",
        "allowed": False,
        "status": {"code": 422, "reason": "Invalid", "message": "a; b"},
    }


def _cvlan(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "lab", "annotations": annotations or {}}, "spec": spec}


@pytest.mark.parametrize(
    ("operation", "new", "old", "fragment"),
    [
        ("CREATE", _cvlan({"interface": {"ipam": {"subnet": "10.0.0.0/24"}}}), None, None),
        ("CREATE", _cvlan({"interface": {"ipam": {"subnet": "10.0.0.9/24"}}}), None, "host bits"),
        ("CREATE", _cvlan({"interface": {"ipam": {"subnet": "10.0.0.0/31"}}}), None, "too small"),
        ("CREATE", _cvlan({"security": "none"}), None, "spec.security"),
        ("UPDATE", _cvlan({"label": "b"}), _cvlan({"label": "a"}), "immutable"),
        ("UPDATE", _cvlan({"label": "lab"}), _cvlan({}), None),
        ("UPDATE", _cvlan({"label": "x"}), _cvlan({}), "from 'lab' to 'x'"),
        (
            "UPDATE",
            _cvlan({}, {"peertap.io/authority": "bb"}),
            _cvlan({}, {"peertap.io/authority": "aa"}),
            "peertap.io/authority is immutable",
        ),
        (
            "UPDATE",
            _cvlan({}, {"peertap.io/authority": "aa"}),
            _cvlan({}, {}),
            None,
        ),
        ("DELETE", None, _cvlan({}), None),
        (
            "UPDATE",
            _cvlan({"interface": {"mode": "tun"}}, {"kopf": "x"}),
            _cvlan({"interface": {"mode": "tun"}}),
            None,
        ),
        ("CREATE", _cvlan({"interface": {"mode": "tun"}}), None, None),
    ],
)
def test_cryptovlan_validation(operation: str, new: Any, old: Any, fragment: str | None) -> None:
    denials = admission.validate_cryptovlan(operation=operation, obj=new, old=old)
    if fragment is None:
        assert denials == []
    else:
        assert any(fragment in d for d in denials), denials


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"relays": {"serviceType": "NodePort"}}, None),
        ({"relays": {"replicas": 3}}, None),
        ({"relays": {"replicas": 17}}, "spec.relays.replicas"),
        ({"relays": {"replicas": -1}}, "spec.relays.replicas"),
        ({"relays": {"acl": {"mode": "list"}}}, "needs an allow"),
        ({"bootstrapPeers": ["/ip4/1.2.3.4/tcp/1"]}, "spec.bootstrapPeers.0"),
        ({"cryptoVLANs": ["Not_A_Name"]}, "spec.cryptoVLANs.0"),
    ],
)
def test_mvlan_validation(spec: dict[str, Any], fragment: str | None) -> None:
    denials = admission.validate_mvlan(operation="CREATE", obj={"spec": spec}, old=None)
    if fragment is None:
        assert denials == []
    else:
        assert any(fragment in d for d in denials), denials


def test_metadata_only_update_of_an_invalid_mvlan_is_allowed_so_it_can_be_deleted() -> None:
    bad = {"spec": {"relays": {"replicas": 3}}}
    finalizing = {"metadata": {"finalizers": []}, **bad}
    assert admission.validate_mvlan(operation="UPDATE", obj=finalizing, old=bad) == []


def test_sidecar_goes_first_among_init_containers_and_reads_files_as_the_pods_fs_group() -> None:
    pod = _pod(
        {"peertap.io/vlans": "lab"},
        spec={
            "initContainers": [{"name": "migrate", "image": "x"}],
            "securityContext": {"fsGroup": 2000},
        },
    )
    out = _apply(pod, admission.mutate_pod(pod, vlans=[], image="i"))
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["peertap", "migrate"]
    assert "--groups=0,2000" in out["spec"]["initContainers"][0]["command"]
    # A pod that already has the sidecar (as an init or, from older releases, a plain
    # container) is left alone.
    assert admission.mutate_pod(out, vlans=[], image="i") == []
    old_style = _pod({"peertap.io/vlans": "lab"})
    old_style["spec"]["containers"].append({"name": "peertap", "image": "i"})
    assert admission.mutate_pod(old_style, vlans=[], image="i") == []


def test_root_sidecar_setting_runs_peertap_directly_with_net_admin_only() -> None:
    pod = _pod({"peertap.io/vlans": "lab"})
    settings = podspec.PodSettings(user=0, sidecar_resources={"requests": {"cpu": "1"}})
    out = _apply(pod, admission.mutate_pod(pod, vlans=[], image="i", settings=settings))
    (sidecar,) = out["spec"]["initContainers"]
    assert sidecar["command"] == ["peertap", "run", "--config", "/etc/peertap/node.json"]
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert sidecar["resources"] == {"requests": {"cpu": "1"}}


def test_pods_labelled_for_a_missing_vlan_are_named_in_the_refusal() -> None:
    labels = {"peertap.io/vlans": "lab_nope_gone"}
    assert admission.missing_vlans(labels, ["lab", "other"]) == ["gone", "nope"]
    assert admission.missing_vlans({"peertap.io/vlans": "lab"}, ["lab"]) == []
    assert admission.missing_vlans({"app": "x"}, []) == []
    relay = {"peertap.io/vlans": "nope", "peertap.io/role": "relay"}
    assert admission.missing_vlans(relay, []) == []
    assert "gone, nope" in admission.missing_vlans_message(["gone", "nope"], "team")


def _cvlan(name: str, spec: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if label:
        meta["annotations"] = {"peertap.io/label": label}
    return {"metadata": meta, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "others", "clash"),
    [
        ({}, [_cvlan("other", {})], False),
        # Default names collide: pt-<label>, cut to 15 characters.
        ({"label": "averyverylonglabel"}, [_cvlan("o", {"label": "averyverylongother"})], True),
        ({"interface": {"name": "pt-x"}}, [_cvlan("o", {"interface": {"name": "pt-x"}})], True),
        ({"interface": {"name": "pt-x"}}, [_cvlan("x", {})], True),
        ({"interface": {"name": "pt-x"}}, [_cvlan("o", {}, label="x")], True),
        # The object itself (an update) is no collision.
        ({}, [_cvlan("lab", {})], False),
    ],
)
def test_interface_name_collisions_are_refused(
    spec: dict[str, Any], others: list[dict[str, Any]], clash: bool
) -> None:
    denials = admission.validate_cryptovlan(
        operation="CREATE", obj={"metadata": {"name": "lab"}, "spec": spec}, old=None, others=others
    )
    assert bool(denials) == clash
    if clash:
        assert "spec.interface.name" in denials[0]
