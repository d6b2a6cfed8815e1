"""kopf handlers: wire the controllers, webhooks and probes to kopf's event loop.

This module is what kopf loads (`kopf run -m peertap.operator.handlers`, or the
entry point). It only routes events; decisions live in `membership`,
`relay` and `admission`. Options come from `options.current()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kopf

from peertap.sidecar import identity

from . import (
    kube,
    membership,
    models,
    options,
    reconcile,
    relay,
    servers,
    ui,
    webhook_tls,
)

log = logging.getLogger(__name__)

FINALIZER = "peertap.io/cleanup"
STORAGE_PREFIX = "kopf.peertap.io"
RETRY_DELAY = 10
PEERING_LIFETIME = 30

T = TypeVar("T")


@dataclass
class Runtime:
    api: kube.KubeApi
    reconciler: reconcile.Reconciler
    relays: relay.RelayReconciler
    servers: servers.Servers = field(default_factory=servers.Servers)
    started: dt.datetime = field(default_factory=reconcile.utcnow)
    ca_pem: bytes = b""
    cert_pem: bytes = b""
    ssl_ctx: ssl.SSLContext | None = None
    renewer: asyncio.Task[None] | None = None


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return _runtime


def _health() -> dict[str, Any]:
    rt = _runtime
    return {"ok": rt is not None, "started": rt.started.isoformat() if rt else None}


async def _webhook_tls(rt: Runtime, opts: options.Options) -> webhook_tls.Bundle:
    if opts.webhook_tls_dir:
        base = Path(opts.webhook_tls_dir)
        try:
            ca = (base / "ca.crt").read_bytes() if (base / "ca.crt").exists() else b""
            return webhook_tls.Bundle(
                ca_pem=ca,
                cert_pem=(base / "tls.crt").read_bytes(),
                key_pem=(base / "tls.key").read_bytes(),
            )
        except OSError as err:
            raise webhook_tls.TlsError(f"cannot read {base}/tls.crt or tls.key: {err}") from err
    return await webhook_tls.ensure(
        rt.api,
        secret_ref=opts.webhook_cert_secret,
        names=webhook_tls.dns_names(opts.webhook_service),
        now=reconcile.utcnow(),
    )


async def _start_servers(rt: Runtime, opts: options.Options) -> None:
    await rt.servers.start("health", servers.health_app(_health), opts.health_listen, ssl_ctx=None)
    await rt.servers.start("metrics", servers.metrics_app(), opts.metrics_listen, ssl_ctx=None)
    if opts.ui_listen:
        ui_app = ui.app(rt.api, namespaces=opts.namespaces)
        await rt.servers.start("ui", ui_app, opts.ui_listen, ssl_ctx=None)
    if opts.no_webhook:
        return
    bundle = await _webhook_tls(rt, opts)
    rt.ca_pem, rt.cert_pem = bundle.ca_pem, bundle.cert_pem
    rt.ssl_ctx = servers.ssl_context(cert_pem=bundle.cert_pem, key_pem=bundle.key_pem)
    await rt.servers.start(
        "webhook", servers.webhook_app(rt.api, opts), opts.webhook_listen, ssl_ctx=rt.ssl_ctx
    )
    await _publish_ca(rt, opts, bundle)
    rt.renewer = asyncio.create_task(_renew_webhook_tls(rt, opts), name="webhook-tls-renewal")


async def _publish_ca(rt: Runtime, opts: options.Options, bundle: webhook_tls.Bundle) -> None:
    if bundle.ca_pem:
        try:
            await webhook_tls.publish_ca(
                rt.api, config_name=opts.webhook_config_name, ca_pem=bundle.ca_pem
            )
        except kube.KubeError as err:
            log.warning("could not publish the webhook caBundle: %s", err)


async def _renew_webhook_tls(rt: Runtime, opts: options.Options) -> None:
    """Re-check the serving certificate while running: renew it (or pick up the one another
    replica or cert-manager stored) before it expires, serve it without a restart, and
    publish its CA. Every replica runs this, leader or not: all of them serve the webhook."""
    while True:
        await asyncio.sleep(opts.webhook_cert_check)
        try:
            bundle = await _webhook_tls(rt, opts)
        except (kube.KubeError, webhook_tls.TlsError) as err:
            log.warning("webhook certificate check failed (retried): %s", err)
            continue
        if bundle.cert_pem != rt.cert_pem and rt.ssl_ctx is not None:
            servers.load_certificate(rt.ssl_ctx, cert_pem=bundle.cert_pem, key_pem=bundle.key_pem)
            rt.ca_pem, rt.cert_pem = bundle.ca_pem, bundle.cert_pem
            log.info("serving a renewed webhook certificate")
        await _publish_ca(rt, opts, bundle)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _runtime
    opts = options.current()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    if opts.peering:
        # Peering is required, never auto-detected: without the peering object every
        # replica would run the controllers. A dead leader's record expires after this
        # long, and a standby takes over.
        settings.peering.mandatory = True
        settings.peering.lifetime = PEERING_LIFETIME
    api = kube.KubeApi(kube.load_client())
    rt = Runtime(
        api=api,
        reconciler=reconcile.Reconciler(api, observe_gap=opts.resync_interval / 2),
        relays=relay.RelayReconciler(
            api, image=opts.sidecar_image, clock=reconcile.utcnow, pod=opts.pod_settings()
        ),
    )

    async def relays_take_the_list(namespace: str) -> None:
        await _relays_follow(rt, namespace)

    rt.reconciler.on_revocations_changed = relays_take_the_list
    try:
        await _start_servers(rt, opts)
    except BaseException:
        # kopf retries startup: free the ports so the next attempt can bind them.
        if rt.renewer is not None:
            rt.renewer.cancel()
        await rt.servers.stop()
        raise
    _runtime = rt
    log.info("peertap operator started (sidecar image %s)", opts.sidecar_image)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    global _runtime
    rt, _runtime = _runtime, None
    if rt is not None:
        if rt.renewer is not None:
            rt.renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rt.renewer
        await rt.servers.stop()


async def _guard(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Map failures to kopf's retry semantics: API trouble retries."""
    try:
        return await call()
    except kube.KubeError as err:
        raise kopf.TemporaryError(f"{what}: {err}", delay=RETRY_DELAY) from err


CVLAN = (models.GROUP, models.VERSION, "cryptovlans")
MVLAN = (models.GROUP, models.VERSION, "mvlans")


@kopf.index(*CVLAN)
def cryptovlans_by_namespace(
    *, namespace: str | None, name: str, **_: Any
) -> dict[str | None, str]:
    return {namespace: name}


@kopf.on.resume(*CVLAN)
@kopf.on.create(*CVLAN)
@kopf.on.update(*CVLAN)
async def cryptovlan_changed(*, namespace: str | None, name: str, **_: Any) -> None:
    assert namespace is not None  # namespaced resource
    rt = runtime()
    await _guard(
        f"CryptoVLAN {namespace}/{name}", lambda: rt.reconciler.reconcile_namespace(namespace)
    )
    await _relays_follow(rt, namespace)


async def _relays_follow(rt: Runtime, namespace: str) -> None:
    """The relays hold credentials from the CryptoVLANs naming their MVLAN: after a
    CryptoVLAN change, reconcile the namespace's MVLANs. Their trouble is theirs (their
    own handlers and resync report and retry it), not the CryptoVLAN's."""
    try:
        await rt.relays.reconcile_namespace(namespace)
    except (kube.KubeError, identity.IdentityError) as err:
        log.warning(
            "MVLANs of %s did not follow a CryptoVLAN change (resync retries): %s", namespace, err
        )


async def _every_resync(
    stopped: kopf.DaemonStopped, what: str, run: Callable[[], Awaitable[Any]]
) -> None:
    """The periodic resync of one resource: re-read everything, ask the sidecars for status.

    A daemon rather than a kopf timer so the interval is an operator option. A failed
    round is logged and the next one retries. kopf stops async daemons by cancelling
    them, which ends the sleep (`await stopped.wait(n)` would leave a timer task behind).
    """
    while not stopped:
        await asyncio.sleep(options.current().resync_interval)
        if stopped:
            return
        try:
            await run()
        except (
            kube.KubeError,
            identity.IdentityError,
            kopf.TemporaryError,
        ) as err:
            log.warning("resync of %s failed: %s", what, err)


@kopf.daemon(*CVLAN, cancellation_timeout=5)
async def cryptovlan_resync(
    *, stopped: kopf.DaemonStopped, namespace: str | None, name: str, **_: Any
) -> None:
    assert namespace is not None  # namespaced resource
    await _every_resync(
        stopped,
        f"CryptoVLAN {namespace}/{name}",
        lambda: runtime().reconciler.reconcile_namespace(namespace, observe=True),
    )


@kopf.on.delete(*CVLAN)
async def cryptovlan_deleted(*, namespace: str | None, name: str, **_: Any) -> None:
    assert namespace is not None  # namespaced resource
    rt = runtime()
    await _guard(
        f"CryptoVLAN {namespace}/{name}", lambda: rt.reconciler.cleanup_vlan(namespace, name)
    )
    await _relays_follow(rt, namespace)


@kopf.on.event("", "v1", "pods")
async def pod_event(*, namespace: str | None, **kwargs: Any) -> None:
    index: kopf.Index[str | None, str] = kwargs["cryptovlans_by_namespace"]
    if namespace is None or namespace not in index or _runtime is None:
        return
    try:
        await _runtime.reconciler.reconcile_namespace(namespace)
    except kube.KubeError as err:
        # The periodic resync retries; pod events themselves are not retried by kopf.
        log.warning("reconcile of %s after a pod event failed: %s", namespace, err)


def _authority_secret(name: str | None, **_: Any) -> bool:
    return bool(name) and str(name).endswith(membership.authority_secret_name(""))


@kopf.on.event("", "v1", "secrets", when=_authority_secret)
async def authority_secret_event(
    *, namespace: str | None, event: kopf.RawEvent, **kwargs: Any
) -> None:
    """A VLAN's authority Secret deleted or restored: act now, not at the next resync.
    Copied Secrets need not carry our labels, so these are told apart by name."""
    index: kopf.Index[str | None, str] = kwargs["cryptovlans_by_namespace"]
    if event.get("type") is None:
        return  # the initial listing: the resume handlers reconcile every VLAN anyway
    if namespace is None or namespace not in index or _runtime is None:
        return
    try:
        await _runtime.reconciler.reconcile_namespace(namespace)
    except kube.KubeError as err:
        log.warning("reconcile of %s after an authority Secret event failed: %s", namespace, err)


async def _mvlan(
    body: kopf.Body, namespace: str, index: kopf.Index[str | None, str], *, observe: bool
) -> None:
    rt = runtime()
    await rt.relays.reconcile(dict(body), observe=observe)
    if namespace in index:
        # Members bootstrap from the relay addresses just written.
        await rt.reconciler.reconcile_namespace(namespace)


@kopf.on.resume(*MVLAN)
@kopf.on.create(*MVLAN)
@kopf.on.update(*MVLAN)
async def mvlan_changed(
    *, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    assert namespace is not None  # namespaced resource
    index: kopf.Index[str | None, str] = kwargs["cryptovlans_by_namespace"]
    await _guard(f"MVLAN {namespace}/{name}", lambda: _mvlan(body, namespace, index, observe=False))


@kopf.daemon(*MVLAN, cancellation_timeout=5)
async def mvlan_resync(
    *, stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Relays and their Services are re-read (late load-balancer addresses reach the members)
    and the relays' sidecars report the peers they see."""
    assert namespace is not None  # namespaced resource
    index: kopf.Index[str | None, str] = kwargs["cryptovlans_by_namespace"]
    await _every_resync(
        stopped, f"MVLAN {namespace}/{name}", lambda: _mvlan(body, namespace, index, observe=True)
    )


@kopf.on.delete(*MVLAN)
async def mvlan_deleted(*, namespace: str | None, name: str, **_: Any) -> None:
    assert namespace is not None  # namespaced resource
    rt = runtime()
    await _guard(f"MVLAN {namespace}/{name}", lambda: rt.relays.cleanup(namespace, name))
