"""Operator flags, each also read from PEERTAP_<FLAG>."""

from __future__ import annotations

import pytest

from peertap.operator import options


def test_defaults_match_the_chart_contract() -> None:
    opts = options.parse([], env={})
    assert opts.namespaces == ()
    assert opts.webhook_listen == "0.0.0.0:9443"
    assert opts.health_listen == "0.0.0.0:8080"
    assert opts.metrics_listen == "0.0.0.0:9090"
    assert not opts.no_webhook and not opts.verbose and opts.webhook_tls_dir is None
    assert opts.sidecar_image == "ghcr.io/peertap/peertap-sidecar:0.1.0"


def test_flags_in_equals_form_and_repeated_namespaces() -> None:
    opts = options.parse(
        [
            "--namespace=a",
            "--namespace=b",
            "--webhook-listen=127.0.0.1:1",
            "--webhook-service=svc.ns",
            "--webhook-cert-secret=ns/cert",
            "--webhook-config-name=cfg",
            "--webhook-tls-dir=/tls",
            "--health-listen=:2",
            "--metrics-listen=[::]:3",
            "--sidecar-image=r/i:1",
            "--no-webhook",
            "--verbose",
        ],
        env={},
    )
    assert opts == options.Options(
        namespaces=("a", "b"),
        webhook_listen="127.0.0.1:1",
        webhook_service="svc.ns",
        webhook_cert_secret="ns/cert",
        webhook_config_name="cfg",
        webhook_tls_dir="/tls",
        no_webhook=True,
        health_listen=":2",
        metrics_listen="[::]:3",
        sidecar_image="r/i:1",
        verbose=True,
    )


def test_environment_supplies_every_flag_and_flags_win() -> None:
    env = {
        "PEERTAP_NAMESPACE": "x, y",
        "PEERTAP_WEBHOOK_LISTEN": "0.0.0.0:1443",
        "PEERTAP_SIDECAR_IMAGE": "from/env:1",
        "PEERTAP_NO_WEBHOOK": "true",
        "PEERTAP_VERBOSE": "1",
    }
    opts = options.parse([], env=env)
    assert opts.namespaces == ("x", "y")
    assert opts.webhook_listen == "0.0.0.0:1443"
    assert opts.sidecar_image == "from/env:1"
    assert opts.no_webhook and opts.verbose
    assert options.parse(["--sidecar-image=flag:2"], env=env).sidecar_image == "flag:2"
    assert options.parse(["--namespace=z"], env=env).namespaces == ("z",)


def test_bad_listen_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        options.parse(["--health-listen=nowhere"], env={})
    assert exit_info.value.code == 2
    assert "--health-listen must be HOST:PORT" in capsys.readouterr().err


def test_env_names_are_upper_snake() -> None:
    assert options.env_name("--webhook-cert-secret") == "PEERTAP_WEBHOOK_CERT_SECRET"


def test_resync_interval_comes_from_the_flag_or_the_environment() -> None:
    assert options.parse([], env={}).resync_interval == 60.0
    env = {"PEERTAP_RESYNC_INTERVAL": "15"}
    assert options.parse([], env=env).resync_interval == 15.0
    assert options.parse(["--resync-interval=2.5"], env=env).resync_interval == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "soon", "86400"])
def test_unusable_resync_interval_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        options.parse([], env={"PEERTAP_RESYNC_INTERVAL": value})
    assert exit_info.value.code == 2
    assert "--resync-interval" in capsys.readouterr().err
