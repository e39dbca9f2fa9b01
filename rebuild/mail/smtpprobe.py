"""``rebuild probe-smtp``: what a mail server offers, before and after STARTTLS, and whether it relays.

Every network step has a timeout. The relay test sends MAIL FROM and RCPT TO only, then
RSET and QUIT: never DATA, so nothing is ever delivered.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from dataclasses import dataclass, field

from rebuild.errors import UsageError

ERROR, WARNING, INFO = "error", "warning", "info"
CLEARTEXT = {"PLAIN", "LOGIN"}


@dataclass(frozen=True)
class ProbeFinding:
    severity: str
    check: str
    message: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class ProbeReport:
    info: dict = field(default_factory=dict)
    findings: list[ProbeFinding] = field(default_factory=list)

    def add(self, severity: str, check: str, message: str) -> None:
        self.findings.append(ProbeFinding(severity, check, message))

    @property
    def failed(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


def parse_target(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6 address; port 25 by default."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "25"
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, "25"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{text!r}: expected HOST or HOST:PORT")
    return host, int(port)


def _certificate(der: bytes) -> dict:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "self_signed": cert.subject == cert.issuer,
    }


def _connect(host: str, port: int, timeout: float, ehlo_name: str, source: str | None) -> tuple[smtplib.SMTP, str]:
    smtp = smtplib.SMTP(timeout=timeout, local_hostname=ehlo_name, source_address=(source, 0) if source else None)
    smtp._host = host  # the name starttls() sends as SNI; smtplib sets it only when the constructor connects
    try:
        code, banner = smtp.connect(host, port)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        raise UsageError(f"cannot connect to {host}:{port}{' from ' + source if source else ''}: {exc}") from None
    if code != 220:
        smtp.close()
        raise UsageError(f"{host}:{port} answered {code} {banner.decode(errors='replace')} instead of a 220 greeting")
    return smtp, banner.decode(errors="replace")


def _verify_chain(host, port, timeout, ehlo_name, source, ca_file: str) -> str | None:
    """None when the certificate verifies against *ca_file*, else the reason (a second connection)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    smtp, _ = _connect(host, port, timeout, ehlo_name, source)
    try:
        smtp.ehlo()
        smtp.starttls(context=context)
        return None
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message or str(exc)
    except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
        return f"TLS failed: {exc}"
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _relay_test(smtp: smtplib.SMTP, sender: str, recipient: str, report: ProbeReport) -> None:
    code, msg = smtp.mail(sender)
    text = msg.decode(errors="replace")
    report.info["relay_mail_from"] = f"{code} {text}"
    if code >= 400:
        report.add(WARNING, "relay", f"inconclusive: MAIL FROM:<{sender}> was refused ({code} {text}); the relay test"
                                     " proves nothing (without DNS an unresolvable sender domain is refused first)")
        return
    code, msg = smtp.rcpt(recipient)
    text = msg.decode(errors="replace")
    report.info["relay_rcpt_to"] = f"{code} {text}"
    if code in (250, 251):
        report.add(ERROR, "relay", f"OPEN RELAY: RCPT TO:<{recipient}> accepted ({code} {text}) from an"
                                   " unauthenticated client")
    elif code == 503:
        report.add(WARNING, "relay", f"inconclusive: RCPT TO answered {code} {text} (bad sequence)")
    elif code >= 500 or code in (450, 451, 452):
        report.add(INFO, "relay", f"relaying refused ({code} {text})")
    else:
        report.add(WARNING, "relay", f"inconclusive: RCPT TO answered {code} {text}")


def probe(host: str, port: int, *, timeout: float = 15.0, ehlo_name: str = "rebuild-probe.localdomain",
          ca_file: str | None = None, relay: tuple[str, str] | None = None, source: str | None = None) -> ProbeReport:
    report = ProbeReport()
    smtp, banner = _connect(host, port, timeout, ehlo_name, source)
    report.info["banner"] = banner
    try:
        code, _ = smtp.ehlo()
        if code != 250:
            report.add(ERROR, "ehlo", f"EHLO refused ({code})")
            return report
        before = dict(smtp.esmtp_features)
        report.info["extensions_before_tls"] = sorted(k.upper() for k in before)
        auth_before = before.get("auth", "").upper().split()
        report.info["auth_before_tls"] = auth_before
        exposed = sorted(CLEARTEXT & set(auth_before))
        if exposed:
            report.add(WARNING, "auth-before-tls", f"AUTH {' '.join(exposed)} offered before STARTTLS: passwords can"
                                                   " cross the network in clear; set confAUTH_OPTIONS `p'")
        if "starttls" not in before:
            report.add(ERROR, "starttls", "STARTTLS is not advertised")
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # report what is offered; verification is checked apart
            try:
                code, msg = smtp.starttls(context=context)
            except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
                report.add(ERROR, "starttls", f"STARTTLS advertised but the upgrade failed: {exc}")
                return report
            tls_sock = smtp.sock
            report.info["tls_version"] = tls_sock.version()
            report.info["cipher"] = tls_sock.cipher()[0]
            der = tls_sock.getpeercert(binary_form=True)
            if der:
                report.info["certificate"] = _certificate(der)
            report.add(INFO, "starttls", f"STARTTLS works: {tls_sock.version()}, {tls_sock.cipher()[0]}")
            if ca_file:
                reason = _verify_chain(host, port, timeout, ehlo_name, source, ca_file)
                report.info["certificate_verifies"] = reason is None
                if reason:
                    report.add(WARNING, "certificate", f"the certificate does not verify against {ca_file}: {reason}")
            smtp.ehlo()
            after = dict(smtp.esmtp_features)
            report.info["extensions_after_tls"] = sorted(k.upper() for k in after)
            report.info["auth_after_tls"] = after.get("auth", "").upper().split()
            if "EXTERNAL" in report.info["auth_after_tls"]:
                report.add(WARNING, "auth-external", "AUTH EXTERNAL is offered: make sure it is not in TRUST_AUTH_MECH")
        if relay:
            _relay_test(smtp, relay[0], relay[1], report)
    except (socket.timeout, TimeoutError):
        report.add(ERROR, "timeout", f"the server stopped answering (no reply within {timeout:g}s)")
    except smtplib.SMTPServerDisconnected as exc:
        report.add(ERROR, "disconnected", f"the server hung up: {exc}")
    finally:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            pass
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
    return report


def format_report(report: ProbeReport) -> str:
    lines = []
    for key, value in report.info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = " ".join(value) or "-"
        lines.append(f"{key:<22} {value}")
    lines.append("")
    for f in sorted(report.findings, key=lambda f: {ERROR: 0, WARNING: 1, INFO: 2}[f.severity]):
        lines.append(f"{f.severity:<8} {f.check:<16} {f.message}")
    errors = sum(f.severity == ERROR for f in report.findings)
    warnings = sum(f.severity == WARNING for f in report.findings)
    lines.append(f"{errors} errors, {warnings} warnings")
    return "\n".join(lines)


def report_json(report: ProbeReport) -> str:
    return json.dumps({"info": report.info, "findings": [f.as_dict() for f in report.findings]}, indent=2)
