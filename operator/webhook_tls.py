"""Webhook serving certificate: a private CA and a leaf for NAME.NAMESPACE.svc (`cryptography`).

The pair is kept in a Secret (ca.crt, tls.crt, tls.key) so restarts and every replica
reuse it; a bundle is replaced when its names differ or it expires within RENEW_BEFORE.
The operator then writes the CA into both webhook configurations' caBundle. A running
operator checks again every `--webhook-cert-check` seconds (`Renewer`) and serves the new
certificate without a restart. A renewed ca.crt also carries the previous CA while it is
valid, so a replica still serving the previous certificate stays trusted until it reloads.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from . import kube, objects

log = logging.getLogger(__name__)

VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


class TlsError(Exception):
    """The webhook certificate could not be loaded, stored or published."""


@dataclass(frozen=True)
class Bundle:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def dns_names(service: str) -> list[str]:
    """SANs for `--webhook-service NAME.NAMESPACE`."""
    name, _, namespace = service.partition(".")
    if not name or not namespace:
        raise TlsError(f"--webhook-service must be NAME.NAMESPACE, got {service!r}")
    return [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate(names: Sequence[str], *, now: dt.datetime) -> Bundle:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peertap-operator webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Bundle(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=leaf.public_bytes(serialization.Encoding.PEM),
        key_pem=_key_pem(leaf_key),
    )


def usable(bundle: Bundle, names: Sequence[str], *, now: dt.datetime) -> bool:
    """The leaf is signed by the CA, names every SAN and is valid well past now."""
    try:
        ca = x509.load_pem_x509_certificate(bundle.ca_pem)
        leaf = x509.load_pem_x509_certificate(bundle.cert_pem)
        serialization.load_pem_private_key(bundle.key_pem, password=None)
        leaf.verify_directly_issued_by(ca)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound) as err:
        log.info("stored webhook certificate is unusable (%s); making a new one", err)
        return False
    except Exception as err:  # InvalidSignature and friends from the backend
        log.info("stored webhook certificate does not verify (%s)", type(err).__name__)
        return False
    if set(sans.get_values_for_type(x509.DNSName)) != set(names):
        return False
    return leaf.not_valid_after_utc - now > RENEW_BEFORE


async def ensure(
    api: kube.KubeApi, *, secret_ref: str, names: Sequence[str], now: dt.datetime
) -> Bundle:
    """Reuse the bundle in Secret NAMESPACE/NAME, or generate and store a new one."""
    namespace, _, name = secret_ref.partition("/")
    if not namespace or not name:
        raise TlsError(f"--webhook-cert-secret must be NAMESPACE/NAME, got {secret_ref!r}")
    path = kube.SECRETS.path(namespace, name)
    current = await api.get(path)
    if current is not None:
        data = objects.decode(current.get("data"))
        stored = Bundle(
            ca_pem=data.get("ca.crt", "").encode(),
            cert_pem=data.get("tls.crt", "").encode(),
            key_pem=data.get("tls.key", "").encode(),
        )
        if usable(stored, names, now=now):
            return stored
    bundle = generate(names, now=now)
    if current is not None:
        previous = _first_valid_ca(objects.decode(current.get("data")).get("ca.crt", ""), now)
        if previous:
            bundle = Bundle(bundle.ca_pem + previous, bundle.cert_pem, bundle.key_pem)
    data = {
        "ca.crt": bundle.ca_pem.decode(),
        "tls.crt": bundle.cert_pem.decode(),
        "tls.key": bundle.key_pem.decode(),
    }
    if current is None:
        body = objects.secret(
            meta=objects.metadata(
                name=name, namespace=namespace, component="webhook-tls", owner=None
            ),
            data=data,
        )
        body["type"] = "kubernetes.io/tls"
        try:
            await api.create(kube.SECRETS.path(namespace), body)
        except kube.Conflict:
            # Another replica stored one first: use it, so all replicas share one CA.
            return await _stored_or_raise(api, path, names, now)
    else:
        patch: dict[str, object] = {"data": objects.encode(data)}
        version = (current.get("metadata") or {}).get("resourceVersion")
        if version:
            # Optimistic lock: when another replica renewed meanwhile, take its bundle.
            patch["metadata"] = {"resourceVersion": version}
        try:
            await api.patch(path, patch)
        except kube.Conflict:
            return await _stored_or_raise(api, path, names, now)
    log.info("stored a new webhook certificate in Secret %s", secret_ref)
    return bundle


def _first_valid_ca(pem: str, now: dt.datetime) -> bytes:
    """The first certificate of a stored ca.crt, while it is still valid (else b"")."""
    try:
        ca = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return b""
    if ca.not_valid_after_utc <= now:
        return b""
    return ca.public_bytes(serialization.Encoding.PEM)


async def _stored_or_raise(
    api: kube.KubeApi, path: str, names: Sequence[str], now: dt.datetime
) -> Bundle:
    found = await api.get(path)
    data = objects.decode((found or {}).get("data"))
    stored = Bundle(
        ca_pem=data.get("ca.crt", "").encode(),
        cert_pem=data.get("tls.crt", "").encode(),
        key_pem=data.get("tls.key", "").encode(),
    )
    if found is None or not usable(stored, names, now=now):
        raise TlsError(f"the webhook certificate Secret {path} changed under us and is unusable")
    return stored


async def publish_ca(api: kube.KubeApi, *, config_name: str, ca_pem: bytes) -> list[str]:
    """Write caBundle into every webhook of both configurations; returns the ones patched."""
    ca_b64 = base64.b64encode(ca_pem).decode()
    patched = []
    for resource in (kube.MUTATING_WEBHOOKS, kube.VALIDATING_WEBHOOKS):
        path = resource.path(None, config_name)
        config = await api.get(path)
        if config is None:
            log.warning("%s %s not found; caBundle not published", resource.plural, config_name)
            continue
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": ca_b64}
            for i, hook in enumerate(config.get("webhooks") or [])
            if (hook.get("clientConfig") or {}).get("caBundle") != ca_b64
        ]
        if ops:
            await api.patch(path, ops)
        patched.append(f"{resource.plural}/{config_name}")
    return patched
