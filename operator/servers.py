"""The operator's HTTP endpoints: admission webhooks (HTTPS), health probe, Prometheus metrics.

All three run as aiohttp sites on kopf's event loop. Bound ports are recorded
in `Servers.ports`, so port 0 (tests) works.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import prometheus_client
from aiohttp import web
from pydantic import ValidationError

from . import admission, kube, metrics, models, options

log = logging.getLogger(__name__)

MUTATE_PODS = "/mutate-pods"
VALIDATE_CRYPTOVLANS = "/validate-cryptovlans"
VALIDATE_MVLANS = "/validate-mvlans"

Health = Callable[[], dict[str, Any]]


def ssl_context(*, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_certificate(ctx, cert_pem=cert_pem, key_pem=key_pem)
    return ctx


def load_certificate(ctx: ssl.SSLContext, *, cert_pem: bytes, key_pem: bytes) -> None:
    """(Re)load the serving certificate: connections accepted afterwards present it."""
    with tempfile.TemporaryDirectory(prefix="peertap-tls-") as tmp:
        cert = Path(tmp) / "tls.crt"
        key = Path(tmp) / "tls.key"
        cert.write_bytes(cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert, key)


async def _vlan_selectors(api: kube.KubeApi, namespace: str) -> list[admission.VlanSelector]:
    out = []
    for cvlan in await api.list_objects(kube.CRYPTOVLANS.path(namespace)):
        name = str((cvlan.get("metadata") or {}).get("name", ""))
        raw = (cvlan.get("spec") or {}).get("podSelector")
        selector: models.LabelSelector | None = None
        if raw is not None:
            try:
                selector = models.LabelSelector.model_validate(raw)
            except ValidationError:
                continue
        out.append(admission.VlanSelector(name=name, selector=selector))
    return out


def webhook_app(api: kube.KubeApi, opts: options.Options) -> web.Application:
    async def review(
        request: web.Request,
        decide: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> web.Response:
        try:
            body = await request.json()
            req = body["request"]
            if not isinstance(req, dict):
                raise TypeError("request is not an object")
        except (ValueError, KeyError, TypeError) as err:
            metrics.ADMISSIONS.labels(request.path, "malformed").inc()
            return web.json_response({"error": f"not an AdmissionReview: {err}"}, status=400)
        answer = await decide(req)
        verdict = "allowed" if answer["response"]["allowed"] else "denied"
        if answer["response"].get("patch"):
            verdict = "mutated"
        metrics.ADMISSIONS.labels(request.path, verdict).inc()
        return web.json_response(answer)

    async def mutate(req: dict[str, Any]) -> dict[str, Any]:
        pod = req.get("object") or {}
        namespace = req.get("namespace") or (pod.get("metadata") or {}).get("namespace") or ""
        warnings: list[str] = []
        try:
            vlans = await _vlan_selectors(api, namespace)
        except kube.KubeError as err:
            log.warning("cannot list CryptoVLANs in %s: %s", namespace, err)
            vlans = []
            warnings.append("peertap: CryptoVLAN selectors unavailable; only labels were checked")
        else:
            labels = dict((pod.get("metadata") or {}).get("labels") or {})
            missing = admission.missing_vlans(labels, [v.name for v in vlans])
            if missing:
                return admission.response(
                    req, denials=[admission.missing_vlans_message(missing, namespace)]
                )
        patch = admission.mutate_pod(
            pod, vlans=vlans, image=opts.sidecar_image, settings=opts.pod_settings()
        )
        return admission.response(req, patch=patch, warnings=warnings)

    async def validate_cvlan(req: dict[str, Any]) -> dict[str, Any]:
        namespace = str(req.get("namespace") or "")
        warnings: list[str] = []
        others: list[dict[str, Any]] = []
        if req.get("operation") in ("CREATE", "UPDATE") and namespace:
            try:
                others = await api.list_objects(kube.CRYPTOVLANS.path(namespace))
            except kube.KubeError as err:
                log.warning("cannot list CryptoVLANs in %s: %s", namespace, err)
                warnings.append("peertap: interface names were not checked against other VLANs")
        denials = admission.validate_cryptovlan(
            operation=str(req.get("operation", "")),
            obj=req.get("object"),
            old=req.get("oldObject"),
            others=others,
        )
        return admission.response(req, denials=denials, warnings=warnings)

    async def validate_mvlan(req: dict[str, Any]) -> dict[str, Any]:
        denials = admission.validate_mvlan(
            operation=str(req.get("operation", "")), obj=req.get("object"), old=req.get("oldObject")
        )
        return admission.response(req, denials=denials)

    async def mutate_handler(request: web.Request) -> web.Response:
        return await review(request, mutate)

    async def cvlan_handler(request: web.Request) -> web.Response:
        return await review(request, validate_cvlan)

    async def mvlan_handler(request: web.Request) -> web.Response:
        return await review(request, validate_mvlan)

    app = web.Application()
    app.router.add_post(MUTATE_PODS, mutate_handler)
    app.router.add_post(VALIDATE_CRYPTOVLANS, cvlan_handler)
    app.router.add_post(VALIDATE_MVLANS, mvlan_handler)
    return app


def health_app(health: Health) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        snapshot = health()
        return web.json_response(snapshot, status=200 if snapshot.get("ok") else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    return app


def metrics_app() -> web.Application:
    async def serve(request: web.Request) -> web.Response:
        payload = prometheus_client.generate_latest()
        return web.Response(
            body=payload, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", serve)
    return app


@dataclass
class Servers:
    runners: list[web.AppRunner] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    async def start(
        self, name: str, app: web.Application, listen: str, *, ssl_ctx: ssl.SSLContext | None
    ) -> int:
        host, port = options.split_host_port(listen, flag=name)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx)
        await site.start()
        self.runners.append(runner)
        bound = int(runner.addresses[-1][1]) if runner.addresses else port
        self.ports[name] = bound
        log.info("serving %s on %s:%d%s", name, host, bound, " (TLS)" if ssl_ctx else "")
        return bound

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()
