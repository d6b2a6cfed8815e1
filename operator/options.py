"""Operator command line: the flags the Helm chart passes, each also read from PEERTAP_<FLAG>.

`--namespace` may repeat (env: comma-separated); none means all namespaces.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import podspec

DEFAULT_SIDECAR_IMAGE = "ghcr.io/peertap/peertap-sidecar:0.1.0"


class OptionsError(Exception):
    """A flag or environment variable has an unusable value."""


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...] = ()
    webhook_listen: str = "0.0.0.0:9443"
    webhook_service: str = "peertap-operator.peertap-system"
    webhook_cert_secret: str = "peertap-system/peertap-operator-webhook-tls"
    webhook_config_name: str = "peertap-operator"
    webhook_tls_dir: str | None = None
    no_webhook: bool = False
    health_listen: str = "0.0.0.0:8080"
    metrics_listen: str = "0.0.0.0:9090"
    ui_listen: str = "127.0.0.1:8081"
    sidecar_image: str = DEFAULT_SIDECAR_IMAGE
    resync_interval: float = 60.0
    webhook_cert_check: float = 3600.0
    # kopf peering: replicas sharing this name elect one leader; empty: standalone.
    peering: str = ""
    sidecar_user: int = podspec.DEFAULT_USER
    # JSON of a container's `resources` (requests/limits); empty: the measured defaults.
    sidecar_resources: str = ""
    relay_resources: str = ""
    verbose: bool = False

    def pod_settings(self) -> podspec.PodSettings:
        """What the webhook and the relays render containers with."""
        defaults = podspec.PodSettings(user=self.sidecar_user)
        return podspec.PodSettings(
            user=self.sidecar_user,
            sidecar_resources=_resources(self.sidecar_resources) or defaults.sidecar_resources,
            relay_resources=_resources(self.relay_resources) or defaults.relay_resources,
        )


def _resources(text: str) -> dict[str, Any] | None:
    """A container `resources` object from JSON; None for empty text."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise OptionsError(f"resources must be JSON, got {text!r}: {err}") from err
    if not isinstance(value, dict) or not set(value) <= {"requests", "limits", "claims"}:
        raise OptionsError(f"resources must be an object with requests/limits, got {text!r}")
    return value


def env_name(flag: str) -> str:
    return "PEERTAP_" + flag.lstrip("-").replace("-", "_").upper()


def split_host_port(value: str, *, flag: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise OptionsError(f"{flag} must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86400:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 86400, got {value!r}")
    return seconds


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m peertap.operator",
        description="PeerTap Kubernetes operator (CryptoVLAN and MVLAN controllers, webhooks).",
    )

    def value(flag: str, default: str | None) -> str | None:
        return env.get(env_name(flag), default)

    ns_env = env.get(env_name("--namespace"), "")
    p.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        default=None,
        help="namespace to watch (repeatable; none: all namespaces)",
    )
    p.add_argument("--webhook-listen", default=value("--webhook-listen", d.webhook_listen))
    p.add_argument(
        "--webhook-service",
        default=value("--webhook-service", d.webhook_service),
        help="NAME.NAMESPACE of the webhook Service (certificate SAN NAME.NAMESPACE.svc)",
    )
    p.add_argument(
        "--webhook-cert-secret",
        default=value("--webhook-cert-secret", d.webhook_cert_secret),
        help="NAMESPACE/NAME of the Secret keeping the webhook certificate",
    )
    p.add_argument(
        "--webhook-config-name",
        default=value("--webhook-config-name", d.webhook_config_name),
        help="name of the Mutating- and ValidatingWebhookConfiguration whose caBundle is patched",
    )
    p.add_argument(
        "--webhook-tls-dir",
        default=value("--webhook-tls-dir", None),
        help="use tls.crt/tls.key (and ca.crt if present) from DIR instead of generating",
    )
    p.add_argument(
        "--no-webhook",
        action="store_true",
        default=_truthy(env.get(env_name("--no-webhook"), "")),
    )
    p.add_argument("--health-listen", default=value("--health-listen", d.health_listen))
    p.add_argument("--metrics-listen", default=value("--metrics-listen", d.metrics_listen))
    p.add_argument(
        "--ui-listen",
        default=value("--ui-listen", d.ui_listen),
        help="HOST:PORT of the read-only cluster web page (empty: none)",
    )
    p.add_argument("--sidecar-image", default=value("--sidecar-image", d.sidecar_image))
    p.add_argument(
        "--resync-interval",
        type=_seconds,
        # A string default goes through `type` too, so a bad environment value is a usage error.
        default=value("--resync-interval", str(d.resync_interval)),
        metavar="SECONDS",
        help="re-read every resource and ask sidecars for their status this often",
    )
    p.add_argument(
        "--peering",
        default=value("--peering", ""),
        metavar="NAME",
        help="elect one active replica through kopf's peering object NAME (a "
        "ClusterKopfPeering, or a KopfPeering per watched namespace); empty: standalone",
    )
    p.add_argument(
        "--sidecar-user",
        type=int,
        default=value("--sidecar-user", str(d.sidecar_user)),
        metavar="UID",
        help="user the sidecar runs as, keeping only CAP_NET_ADMIN (0: root with NET_ADMIN)",
    )
    p.add_argument(
        "--sidecar-resources",
        default=value("--sidecar-resources", ""),
        metavar="JSON",
        help="resources (requests/limits) of injected sidecars",
    )
    p.add_argument(
        "--relay-resources",
        default=value("--relay-resources", ""),
        metavar="JSON",
        help="resources (requests/limits) of MVLAN relay pods",
    )
    p.add_argument(
        "--webhook-cert-check",
        type=_seconds,
        default=value("--webhook-cert-check", str(d.webhook_cert_check)),
        metavar="SECONDS",
        help="re-check the webhook certificate this often and renew it before it expires",
    )
    p.add_argument(
        "--verbose", action="store_true", default=_truthy(env.get(env_name("--verbose"), ""))
    )
    p.set_defaults(_ns_env=ns_env)
    return p


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Options:
    environ = os.environ if env is None else env
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    namespaces = args.namespaces
    if namespaces is None:
        namespaces = [n.strip() for n in args._ns_env.split(",") if n.strip()]
    opts = Options(
        namespaces=tuple(namespaces),
        webhook_listen=args.webhook_listen,
        webhook_service=args.webhook_service,
        webhook_cert_secret=args.webhook_cert_secret,
        webhook_config_name=args.webhook_config_name,
        webhook_tls_dir=args.webhook_tls_dir,
        no_webhook=args.no_webhook,
        health_listen=args.health_listen,
        metrics_listen=args.metrics_listen,
        ui_listen=args.ui_listen,
        sidecar_image=args.sidecar_image,
        resync_interval=args.resync_interval,
        webhook_cert_check=args.webhook_cert_check,
        peering=args.peering,
        sidecar_user=args.sidecar_user,
        sidecar_resources=args.sidecar_resources,
        relay_resources=args.relay_resources,
        verbose=args.verbose,
    )
    if not 0 <= opts.sidecar_user < 2**31:
        parser.error(f"--sidecar-user must be a uid, got {opts.sidecar_user}")
    try:
        opts.pod_settings()
    except OptionsError as err:
        parser.error(str(err))
    for flag, listen in (
        ("--webhook-listen", opts.webhook_listen),
        ("--health-listen", opts.health_listen),
        ("--metrics-listen", opts.metrics_listen),
        *((("--ui-listen", opts.ui_listen),) if opts.ui_listen else ()),
    ):
        try:
            split_host_port(listen, flag=flag)
        except OptionsError as err:
            parser.error(str(err))
    return opts


_current = Options()


def current() -> Options:
    """The options the running operator uses (set by the entry point or a test)."""
    return _current


def use(opts: Options) -> None:
    global _current
    _current = opts
