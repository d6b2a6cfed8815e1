"""The webhook certificate is renewed while the operator runs: served without a restart,
its CA published (beside the previous one, which other replicas may still serve)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import ssl

import yaml
from cryptography import x509
from operator_harness import CERT_SECRET, WEBHOOK_CONFIG, Kubectl, OperatorFactory, wait_for

from peertap.operator import webhook_tls

NAMES = webhook_tls.dns_names("peertap-operator.peertap-system")


def _served(port: int) -> x509.Certificate:
    """The certificate the webhook presents on a new connection."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=NAMES[0]) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _trusted_by(ca_bundle: bytes, cert: x509.Certificate) -> bool:
    for ca in x509.load_pem_x509_certificates(ca_bundle):
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:  # InvalidSignature, ValueError: not this CA
            continue
        return True
    return False


def _store(kubectl: Kubectl, bundle: webhook_tls.Bundle) -> None:
    ns, name = CERT_SECRET.split("/")
    data = {
        "ca.crt": bundle.ca_pem,
        "tls.crt": bundle.cert_pem,
        "tls.key": bundle.key_pem,
    }
    kubectl.apply_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
            }
        ),
        namespace=ns,
    )


def _ca_bundle(kubectl: Kubectl) -> bytes:
    config = json.loads(
        kubectl("get", "mutatingwebhookconfiguration", WEBHOOK_CONFIG, "-o", "json")
    )
    return base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"])


def test_expiring_certificate_is_renewed_and_served_without_a_restart(
    kubectl: Kubectl, operator_factory: OperatorFactory
) -> None:
    kubectl("create", "namespace", "peertap-system", check=False)
    with operator_factory(webhook_cert_check=0.3) as op:
        port = op.ports["webhook"]
        first = _served(port)
        # Another replica (or cert-manager) stored a fresh bundle: it is picked up.
        now = dt.datetime.now(dt.UTC)
        fresh = webhook_tls.generate(NAMES, now=now)
        _store(kubectl, fresh)
        fresh_cert = x509.load_pem_x509_certificate(fresh.cert_pem)
        wait_for("the stored certificate served", lambda: _served(port) == fresh_cert)
        assert _served(port) != first
        wait_for("its CA published", lambda: _trusted_by(_ca_bundle(kubectl), fresh_cert))

        # A bundle 25 days from expiry (inside the renewal window) is replaced by a new one.
        old = webhook_tls.generate(NAMES, now=now - dt.timedelta(days=340))
        _store(kubectl, old)
        old_cert = x509.load_pem_x509_certificate(old.cert_pem)
        renewed = wait_for(
            "a renewed certificate served",
            lambda: (c := _served(port)) not in (old_cert, fresh_cert) and c,
        )
        assert renewed.not_valid_after_utc - now > webhook_tls.RENEW_BEFORE
        # The caBundle trusts the renewed certificate and, during the rotation, the old one.
        bundle = wait_for(
            "renewed CA published",
            lambda: (b := _ca_bundle(kubectl)) and _trusted_by(b, renewed) and b,
        )
        assert _trusted_by(bundle, old_cert)
