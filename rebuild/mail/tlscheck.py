"""TLS as ``probe-smtp`` speaks and judges it: a modern context, a legacy one for 2003 servers, contexts
pinned to one protocol version or one cipher class for enumeration, and findings on what was negotiated.

A server linked with OpenSSL 0.9.6b (the seed's) speaks SSLv3 and TLS 1.0 at most, with RSA key exchange,
RC4/3DES/AES and often a 1024-bit key. The host's default client context asks for TLS 1.2 at security level
2 and cannot talk to it: the legacy context allows every version and cipher this OpenSSL still has
(``@SECLEVEL=0``). What this OpenSSL cannot offer at all (SSLv3 on Debian 12, RC4, 3DES, EXPORT) is reported
as untestable here, never as refused.
"""

from __future__ import annotations

import ssl
import warnings
from datetime import UTC, datetime

ERROR, WARNING = "error", "warning"
LEGACY_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
VERSIONS = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
OLD_VERSIONS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
# cipher classes as OpenSSL names them; (TLS 1.2 and older: TLS 1.3 suites are not chosen by this list)
CIPHER_CLASSES = {
    "NULL": "eNULL",
    "EXPORT": "EXPORT",
    "RC4": "RC4",
    "DES": "DES:!3DES",
    "3DES": "3DES",
    "AES-CBC": "AES:!AESGCM:!AESCCM",
    "AES-GCM": "AESGCM",
    "CHACHA20": "CHACHA20",
}
WEAK_CLASSES = ("NULL", "EXPORT", "RC4", "DES", "3DES")
_WEAK_NAMES = ("NULL", "EXP", "RC4", "DES-CBC-", "DES-CBC3", "3DES", "ADH", "AECDH")
FIX_VERSION = ("link the server against a current OpenSSL (0.9.6 and 0.9.7 stop at TLS 1.0); sendmail 8.15 and later"
               " then refuse the old versions with define(`confSERVER_SSL_OPTIONS',"
               " `+SSL_OP_NO_SSLv3 +SSL_OP_NO_TLSv1 +SSL_OP_NO_TLSv1_1')")
FIX_CIPHERS = "define(`confCIPHER_LIST', `HIGH:!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!DES:!MD5') (sendmail 8.15 and later)"
FIX_KEY = ("make a 2048-bit key and a certificate for it (openssl req -newkey rsa:2048 -sha256 ...) and point"
           " confSERVER_KEY and confSERVER_CERT at them")


def _base_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # report what is offered; verification is checked apart
    return context


def modern_context() -> ssl.SSLContext:
    """TLS 1.2 and up at the host's security level, verification off: what a current client asks for (set
    explicitly: some Pythons, Debian 12's 3.11.2 among them, leave the minimum to OpenSSL's configuration)."""
    context = _base_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def legacy_context() -> ssl.SSLContext:
    """Every protocol version and cipher this OpenSSL still has, at security level 0: what a 2003 server needs."""
    context = _base_context()
    with warnings.catch_warnings():  # old versions are deprecated: speaking them to old servers is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.options &= ~ssl.OP_NO_SSLv3
    context.set_ciphers(LEGACY_CIPHERS)
    return context


def pinned_context(version: str | None = None, cipher_class: str | None = None) -> ssl.SSLContext | None:
    """A context offering only *version*, or only the ciphers of *cipher_class* (TLS 1.2 and older); None where
    this OpenSSL cannot offer it."""
    context = _base_context()
    try:
        context.set_ciphers((CIPHER_CLASSES[cipher_class] + ":@SECLEVEL=0") if cipher_class else LEGACY_CIPHERS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if version is not None:
                if version == "SSLv3" and not ssl.HAS_SSLv3:
                    return None
                context.minimum_version = context.maximum_version = VERSIONS[version]
            else:
                context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                context.maximum_version = ssl.TLSVersion.TLSv1_2
    except (ssl.SSLError, ValueError):
        return None
    if cipher_class and not [c for c in context.get_ciphers() if c.get("protocol") != "TLSv1.3"]:
        return None
    return context


def session_findings(version: str, cipher: str, certificate: dict | None, host: str) -> list[tuple[str, str, str]]:
    """(severity, check, message) for what a handshake negotiated and the certificate it showed."""
    found = []
    if version in OLD_VERSIONS:
        found.append((ERROR, "tls-version", f"{version} negotiated, below TLS 1.2: {FIX_VERSION}"))
    if any(weak in cipher.upper() for weak in _WEAK_NAMES):
        found.append((ERROR, "tls-cipher", f"weak cipher {cipher} negotiated: {FIX_CIPHERS}"))
    if certificate:
        found += certificate_findings(certificate, host)
    return found


def certificate_findings(cert: dict, host: str) -> list[tuple[str, str, str]]:
    found = []
    if cert.get("key_type") == "RSA" and cert.get("key_bits", 4096) < 2048:
        found.append((ERROR, "certificate-key", f"a {cert['key_bits']}-bit RSA key: {FIX_KEY}"))
    signature = (cert.get("signature_hash") or "").lower()
    if signature in ("md5", "sha1"):
        found.append((WARNING, "certificate-signature", f"the certificate is signed with {signature.upper()}:"
                                                        " re-issue it with SHA-256 (openssl req -sha256)"))
    not_after = cert.get("not_after")
    if not_after and datetime.fromisoformat(not_after) < datetime.now(UTC):
        found.append((ERROR, "certificate-expired", f"the certificate expired on {not_after}: renew it"
                                                    " (confSERVER_CERT)"))
    names = cert.get("names") or []
    if host and names and not _matches(host, names):
        found.append((WARNING, "certificate-name", f"the certificate names {', '.join(names[:5])}, not {host}: issue"
                                                   " one for the name clients use (confSERVER_CERT)"))
    return found


def _matches(host: str, names: list[str]) -> bool:
    host = host.lower().strip("[]")
    for name in names:
        name = name.lower()
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
            return True
    return False


def describe_certificate(der: bytes) -> dict:
    """Subject, issuer, expiry, key type and size, signature hash and the names a certificate is for."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "EC" if isinstance(key, ec.EllipticCurvePublicKey) \
        else "DSA" if isinstance(key, dsa.DSAPublicKey) else type(key).__name__
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        listed = [str(n) for n in names.get_values_for_type(x509.DNSName)]
        listed += [str(n) for n in names.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        listed = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    try:
        signature = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else ""
    except Exception:  # noqa: BLE001 - an algorithm this cryptography does not know: leave it unnamed
        signature = ""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "self_signed": cert.subject == cert.issuer,
        "key_type": kind,
        "key_bits": getattr(key, "key_size", 0),
        "signature_hash": signature,
        "names": listed,
    }
