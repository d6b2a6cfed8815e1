"""The files a Pod's volumes hold, written under the pod's directory, as the kubelet would.

ConfigMap, Secret, projected (configMap, secret, serviceAccountToken, downwardAPI),
downwardAPI and emptyDir volumes become directories `<pod dir>/volumes/<name>/`;
a hostPath volume is the host path itself. A ConfigMap or Secret that does not exist
yet (and is not optional) keeps the pod waiting (`NotReadyYet`), as ContainerCreating
does. Service account tokens come from the TokenRequest API, bound to the pod.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .api import Api

JsonObj = Mapping[str, Any]
DEFAULT_TOKEN_SECONDS = 3600


class NotReadyYet(Exception):
    """A volume's source does not exist yet: try again later."""


def _items(
    data: Mapping[str, bytes], items: list[JsonObj] | None, *, what: str
) -> dict[str, bytes]:
    if not items:
        return dict(data)
    out = {}
    for item in items:
        if item["key"] not in data:
            raise NotReadyYet(f"{what} has no key {item['key']}")
        out[item["path"]] = data[item["key"]]
    return out


def _configmap(api: Api, ns: str, src: JsonObj) -> dict[str, bytes]:
    obj = api.get(f"/api/v1/namespaces/{ns}/configmaps/{src['name']}")
    if obj is None:
        if src.get("optional"):
            return {}
        raise NotReadyYet(f"ConfigMap {ns}/{src['name']} does not exist")
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return _items(data, src.get("items"), what=f"ConfigMap {src['name']}")


def _secret(api: Api, ns: str, name: str, src: JsonObj) -> dict[str, bytes]:
    obj = api.get(f"/api/v1/namespaces/{ns}/secrets/{name}")
    if obj is None:
        if src.get("optional"):
            return {}
        raise NotReadyYet(f"Secret {ns}/{name} does not exist")
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return _items(data, src.get("items"), what=f"Secret {name}")


def field_value(pod: JsonObj, path: str) -> str:
    """A downward API fieldPath: metadata.name, metadata.labels['x'], spec.nodeName, ..."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    for mapping in ("labels", "annotations"):
        prefix = f"metadata.{mapping}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(mapping) or {}).get(path[len(prefix) : -2], ""))
    if path in ("metadata.labels", "metadata.annotations"):
        found = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(found.items()))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    return str(simple.get(path) or "")


def _downward(pod: JsonObj, items: list[JsonObj]) -> dict[str, bytes]:
    return {
        item["path"]: field_value(pod, item["fieldRef"]["fieldPath"]).encode()
        for item in items
        if "fieldRef" in item
    }


def _token(api: Api, pod: JsonObj, src: JsonObj) -> dict[str, bytes]:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    sa = spec.get("serviceAccountName") or "default"
    body: dict[str, Any] = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": int(src.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    if src.get("audience"):
        body["spec"]["audiences"] = [src["audience"]]
    answer = api.call(
        "POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", body
    )
    return {src["path"]: answer["status"]["token"].encode()}


def volume_files(api: Api, pod: JsonObj, volume: JsonObj) -> dict[str, bytes] | None:
    """Relative path -> content for one volume; None for volumes that are not files of ours."""
    ns = pod["metadata"]["namespace"]
    if "configMap" in volume:
        return _configmap(api, ns, volume["configMap"])
    if "secret" in volume:
        return _secret(api, ns, volume["secret"]["secretName"], volume["secret"])
    if "downwardAPI" in volume:
        return _downward(pod, volume["downwardAPI"].get("items") or [])
    if "projected" in volume:
        files: dict[str, bytes] = {}
        for source in volume["projected"].get("sources") or []:
            if "configMap" in source:
                files.update(_configmap(api, ns, source["configMap"]))
            elif "secret" in source:
                files.update(_secret(api, ns, source["secret"]["name"], source["secret"]))
            elif "downwardAPI" in source:
                files.update(_downward(pod, source["downwardAPI"].get("items") or []))
            elif "serviceAccountToken" in source:
                files.update(_token(api, pod, source["serviceAccountToken"]))
        return files
    if "emptyDir" in volume:
        return {}
    return None


def _write(directory: Path, files: Mapping[str, bytes], mode: int, group: int | None) -> None:
    """Files with the volume's mode, owned by root and the pod's fsGroup (if any), as the
    kubelet leaves them: an unprivileged container user reads them through its groups."""
    directory.mkdir(parents=True, exist_ok=True)
    if group is not None:
        os.chown(directory, 0, group)
    for rel, content in files.items():
        target = directory / rel
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(content)
        # With an fsGroup the kubelet also lets that group read (SetVolumeOwnership).
        os.chmod(tmp, mode if group is None else mode | 0o440)
        if group is not None:
            os.chown(tmp, 0, group)
        os.replace(tmp, target)


def materialize(api: Api, pod: JsonObj, pod_dir: Path, *, with_tokens: bool) -> dict[str, Path]:
    """Write every volume of `pod`; volume name -> the host path that holds it. Tokens are
    requested only when `with_tokens` (at start: they live an hour, the demo less)."""
    out: dict[str, Path] = {}
    group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        if "hostPath" in volume:
            out[name] = Path(volume["hostPath"]["path"])
            continue
        if "projected" in volume and not with_tokens:
            sources = volume["projected"].get("sources") or []
            if any("serviceAccountToken" in s for s in sources):
                out[name] = pod_dir / "volumes" / name
                continue
        files = volume_files(api, pod, volume)
        if files is None:
            continue
        kind = next(
            k
            for k in ("projected", "configMap", "secret", "downwardAPI", "emptyDir")
            if k in volume
        )
        mode = int((volume.get(kind) or {}).get("defaultMode") or 0o644)
        _write(pod_dir / "volumes" / name, files, mode, group)
        out[name] = pod_dir / "volumes" / name
    return out
