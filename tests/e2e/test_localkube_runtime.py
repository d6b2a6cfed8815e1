"""How localkube turns a container into a process: image, argv, env and mounted paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from localkube import runtime

POD = {
    "metadata": {"name": "east-1", "namespace": "default", "uid": "u-1", "labels": {"a": "b"}},
    "spec": {"nodeName": "east-node"},
    "status": {"podIP": "100.65.1.4"},
}


def test_the_sidecar_image_runs_the_virtualenvs_peertap_with_its_config_where_the_volume_is(
    tmp_path: Path,
) -> None:
    container = {
        "name": "peertap",
        "image": "ghcr.io/peertap/peertap-sidecar:0.1.0",
        "command": ["peertap", "run", "--config", "/etc/peertap/node.json"],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "peertap-config", "mountPath": "/etc/peertap"}],
    }
    launch = runtime.launch(
        POD,
        container,
        volumes={"peertap-config": tmp_path / "vol"},
        container_dir=tmp_path / "c",
        service_env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
        kubeconfig=None,
    )
    assert launch.argv == [
        str(Path(sys.executable).parent / "peertap"),
        "run",
        "--config",
        str(tmp_path / "vol" / "node.json"),
    ]
    assert launch.env["POD"] == "east-1"
    assert launch.env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


def test_args_replace_the_images_cmd_and_expand_variables(tmp_path: Path) -> None:
    container = {
        "name": "operator",
        "image": "peertap-operator:local",
        "args": ["--sidecar-image=$(IMAGE)", "--tls=/certs/tls.crt", "$$(IMAGE)"],
        "env": [{"name": "IMAGE", "value": "peertap-sidecar:local"}],
        "volumeMounts": [{"name": "certs", "mountPath": "/certs"}],
    }
    launch = runtime.launch(
        POD,
        container,
        volumes={"certs": tmp_path / "certs"},
        container_dir=tmp_path / "c",
        service_env={},
        kubeconfig=None,
    )
    assert launch.argv == [
        sys.executable,
        "-m",
        "peertap.operator",
        "--sidecar-image=peertap-sidecar:local",
        f"--tls={tmp_path / 'certs' / 'tls.crt'}",
        "$(IMAGE)",
    ]


def test_an_image_no_local_program_stands_for_is_refused(tmp_path: Path) -> None:
    with pytest.raises(runtime.ImageUnknown, match="nginx"):
        runtime.launch(
            POD,
            {"name": "web", "image": "nginx:1.27"},
            volumes={},
            container_dir=tmp_path,
            service_env={},
            kubeconfig=None,
        )
