"""probe-smtp's judgement of TLS and its relay variants, without a server."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

from rebuild.mail import smtpchecks, tlscheck


def _cert(**over) -> dict:
    cert = {"key_type": "RSA", "key_bits": 2048, "signature_hash": "sha256", "names": ["mail.example.com"],
            "not_after": (datetime.now(UTC) + timedelta(days=30)).isoformat()}
    return {**cert, **over}


def test_a_2003_session_is_judged_by_version_cipher_key_and_signature():
    found = tlscheck.session_findings("TLSv1", "RC4-MD5", _cert(key_bits=1024, signature_hash="md5"), "")
    assert {(s, c) for s, c, _ in found} == {("error", "tls-version"), ("error", "tls-cipher"),
                                            ("error", "certificate-key"), ("warning", "certificate-signature")}
    assert any("confCIPHER_LIST" in m for _, _, m in found) and any("confSERVER_SSL_OPTIONS" in m for _, _, m in found)
    assert tlscheck.session_findings("TLSv1.3", "TLS_AES_256_GCM_SHA384", _cert(), "mail.example.com") == []


def test_an_expired_or_misnamed_certificate_is_said():
    found = tlscheck.certificate_findings(_cert(not_after="2004-01-01T00:00:00+00:00"), "other.example.com")
    assert {c for _, c, _ in found} == {"certificate-expired", "certificate-name"}
    assert tlscheck.certificate_findings(_cert(names=["*.example.com"]), "mail.example.com") == []


def test_what_this_openssl_cannot_offer_is_untestable_not_refused():
    if not ssl.HAS_SSLv3:
        assert tlscheck.pinned_context(version="SSLv3") is None
    assert tlscheck.pinned_context(version="TLSv1.2") is not None
    assert tlscheck.pinned_context(cipher_class="AES-GCM") is not None
    legacy = tlscheck.legacy_context()
    assert legacy.minimum_version <= ssl.TLSVersion.TLSv1 and "AES128-SHA" in {c["name"] for c in legacy.get_ciphers()}


def test_the_relay_variants_are_nmaps_sixteen():
    variants = smtpchecks.relay_variants("probe@example.com", "someone@example.org", "mail.example.net", "192.0.2.1")
    assert len(variants) == 16 and len({v[0] for v in variants}) == 16
    recipients = {v[2] for v in variants}
    assert {"someone%example.org@mail.example.net", "@[192.0.2.1]:someone@example.org", "example.org!someone",
            '"someone@example.org"'} <= recipients
