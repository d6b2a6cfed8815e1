"""Webhook certificate: names, chain and renewal window."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from peertap.operator import webhook_tls

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NAMES = webhook_tls.dns_names("hook.system")


def test_names_cover_the_service_dns_forms() -> None:
    assert NAMES == ["hook.system.svc", "hook.system.svc.cluster.local"]
    with pytest.raises(webhook_tls.TlsError, match=r"NAME\.NAMESPACE"):
        webhook_tls.dns_names("hook")


def test_generated_bundle_chains_to_its_ca_and_names_the_service() -> None:
    bundle = webhook_tls.generate(NAMES, now=NOW)
    leaf = x509.load_pem_x509_certificate(bundle.cert_pem)
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle.ca_pem))
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == NAMES
    assert webhook_tls.usable(bundle, NAMES, now=NOW)


def test_bundle_is_replaced_for_other_names_expiry_or_a_foreign_ca() -> None:
    bundle = webhook_tls.generate(NAMES, now=NOW)
    other = webhook_tls.generate(NAMES, now=NOW)
    assert not webhook_tls.usable(bundle, webhook_tls.dns_names("x.y"), now=NOW)
    assert not webhook_tls.usable(bundle, NAMES, now=NOW + dt.timedelta(days=340))
    assert webhook_tls.usable(bundle, NAMES, now=NOW + dt.timedelta(days=330))
    mixed = webhook_tls.Bundle(
        ca_pem=other.ca_pem, cert_pem=bundle.cert_pem, key_pem=bundle.key_pem
    )
    assert not webhook_tls.usable(mixed, NAMES, now=NOW)
    assert not webhook_tls.usable(webhook_tls.Bundle(b"", b"", b""), NAMES, now=NOW)
