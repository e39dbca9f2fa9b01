"""``rebuild probe-smtp``: what a mail server offers, before and after STARTTLS, and whether it relays.

Every network step has a timeout, the whole probe a deadline (a watchdog shuts its sockets), and a
reply is capped in lines and bytes: a server that answers endless ``250-`` lines, or one byte a
second, ends the probe with a finding instead of holding it. The relay test sends MAIL FROM and
RCPT TO only, then RSET and QUIT: never DATA, so nothing is ever delivered. What the user gives
(the EHLO name, the relay addresses) is checked for characters that would add SMTP commands.
"""

from __future__ import annotations

import json
import re
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field

from rebuild.errors import UsageError

ERROR, WARNING, INFO = "error", "warning", "info"
CLEARTEXT = {"PLAIN", "LOGIN"}
MAX_REPLY_LINES = 200
MAX_REPLY_BYTES = 64 << 10
_EHLO_NAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])$")
_ADDRESS = re.compile(r"^[!-;=?-~]{1,254}$")  # printable ASCII without space, < or >


class _Capped(smtplib.SMTP):
    """smtplib's reply reader with a cap on a reply's lines and bytes."""

    def getreply(self):
        resp, size = [], 0
        if self.file is None:
            self.file = self.sock.makefile("rb")
        while True:
            try:
                line = self.file.readline(smtplib._MAXLINE + 1)
            except OSError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(f"connection lost: {exc}") from None
            if not line:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            size += len(line)
            if len(line) > smtplib._MAXLINE or len(resp) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                self.close()
                raise smtplib.SMTPResponseException(500, f"a reply of over {MAX_REPLY_LINES} lines or"
                                                         f" {MAX_REPLY_BYTES} bytes")
            resp.append(line[4:].strip(b" \t\r\n"))
            code = line[:3]
            errcode = int(code) if code.isdigit() and code.isascii() else -1
            if errcode == -1 or line[3:4] != b"-":
                break
        return errcode, b"\n".join(resp)


class _Deadline:
    """Shuts the probe's sockets down when the whole probe has taken *seconds*."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.live: list[smtplib.SMTP] = []
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.expired = True
        for smtp in list(self.live):
            sock = smtp.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        self.timer.cancel()


def check_inputs(ehlo_name: str, relay: tuple[str, str] | None) -> None:
    """The EHLO name and relay addresses go into SMTP lines: no CR, LF, space, <, > or non-ASCII."""
    if not _EHLO_NAME.match(ehlo_name):
        raise UsageError(f"--ehlo {ehlo_name!r}: not a host name or [address] literal")
    for address in relay or ():
        if not _ADDRESS.match(address):
            raise UsageError(f"--relay-test {address!r}: an address is printable ASCII without spaces, < or >")


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
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536 \
            or any(ch.isspace() or not ch.isprintable() for ch in host):
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


def _connect(host: str, port: int, timeout: float, ehlo_name: str, source: str | None,
             deadline: _Deadline | None = None) -> tuple[smtplib.SMTP, str]:
    smtp = _Capped(timeout=timeout, local_hostname=ehlo_name, source_address=(source, 0) if source else None)
    if deadline is not None:
        deadline.live.append(smtp)
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


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = 15.0                      # seconds per network step
    deadline: float = 120.0                    # seconds for the whole probe
    ehlo_name: str = "rebuild-probe.localdomain"
    ca_file: str | None = None                 # verify the server's certificate against these CAs
    relay: tuple[str, str] | None = None       # (from, to): try an unauthenticated relay
    source: str | None = None                  # connect from this local address
    client_cert: str | None = None             # present this certificate (and key) after STARTTLS
    client_key: str | None = None


def _verify_chain(host: str, port: int, options: ProbeOptions, clock: _Deadline) -> str | None:
    """None when the certificate verifies against the CA file, else the reason (a second connection)."""
    context = ssl.create_default_context(cafile=options.ca_file)
    context.check_hostname = False
    smtp, _ = _connect(host, port, options.timeout, options.ehlo_name, options.source, clock)
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


def _relay_test(smtp: smtplib.SMTP, sender: str, recipient: str, report: ProbeReport, authenticated: str = "") -> None:
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
    who = authenticated or "an unauthenticated client"
    if code in (250, 251):
        report.add(ERROR, "relay", f"OPEN RELAY: RCPT TO:<{recipient}> accepted ({code} {text}) from {who}")
    elif code == 503:
        report.add(WARNING, "relay", f"inconclusive: RCPT TO answered {code} {text} (bad sequence)")
    elif code >= 500 or code in (450, 451, 452):
        report.add(INFO, "relay", f"relaying refused ({code} {text})")
    else:
        report.add(WARNING, "relay", f"inconclusive: RCPT TO answered {code} {text}")


def probe(host: str, port: int, options: ProbeOptions = ProbeOptions()) -> ProbeReport:
    """What *host*:*port* offers before and after STARTTLS, and whether it relays; never raises for the
    server's behaviour (a finding says it), only for bad input or a connection refused."""
    check_inputs(options.ehlo_name, options.relay)
    for name, path in (("--client-cert", options.client_cert), ("--client-key", options.client_key)):
        if path is not None:
            from rebuild.files import read_user_file

            read_user_file(path, name.lstrip("-").replace("-", " "), max_bytes=1 << 20)
    if bool(options.client_cert) != bool(options.client_key):
        raise UsageError("--client-cert and --client-key go together")
    clock = _Deadline(options.deadline)
    report = ProbeReport()
    try:
        smtp, banner = _connect(host, port, options.timeout, options.ehlo_name, options.source, clock)
        report.info["banner"] = banner
        try:
            _session(smtp, host, port, options, clock, report)
        except smtplib.SMTPResponseException as exc:
            report.add(ERROR, "reply", f"the server's reply was cut off: {exc.smtp_error!s}")
        except (socket.timeout, TimeoutError, smtplib.SMTPServerDisconnected, ssl.SSLError, OSError) as exc:
            if clock.expired:
                report.add(ERROR, "deadline", f"the probe took longer than {options.deadline:g}s; stopped")
            elif isinstance(exc, (socket.timeout, TimeoutError)):
                report.add(ERROR, "timeout", f"the server stopped answering (no reply within {options.timeout:g}s)")
            else:
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
    finally:
        clock.cancel()
    return report


def _session(smtp: smtplib.SMTP, host: str, port: int, options: ProbeOptions, clock: _Deadline,
             report: ProbeReport) -> None:
    code, _ = smtp.ehlo()
    if code != 250:
        report.add(ERROR, "ehlo", f"EHLO refused ({code})")
        return
    before = dict(smtp.esmtp_features)
    report.info["extensions_before_tls"] = sorted(k.upper() for k in before)
    auth_before = before.get("auth", "").upper().split()
    report.info["auth_before_tls"] = auth_before
    exposed = sorted(CLEARTEXT & set(auth_before))
    if exposed:
        report.add(WARNING, "auth-before-tls", f"AUTH {' '.join(exposed)} offered before STARTTLS: passwords can"
                                               " cross the network in clear; set confAUTH_OPTIONS `p'")
    authenticated = ""
    if "starttls" not in before:
        report.add(ERROR, "starttls", "STARTTLS is not advertised")
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # report what is offered; verification is checked apart
        if options.client_cert:
            try:
                context.load_cert_chain(options.client_cert, options.client_key)
            except (ssl.SSLError, OSError) as exc:
                raise UsageError(f"--client-cert {options.client_cert}: cannot use it with its key: {exc}") from None
        try:
            smtp.starttls(context=context)
        except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
            report.add(ERROR, "starttls", f"STARTTLS advertised but the upgrade failed: {exc}")
            return
        tls_sock = smtp.sock
        report.info["tls_version"] = tls_sock.version()
        report.info["cipher"] = tls_sock.cipher()[0]
        der = tls_sock.getpeercert(binary_form=True)
        if der:
            report.info["certificate"] = _certificate(der)
        report.add(INFO, "starttls", f"STARTTLS works: {tls_sock.version()}, {tls_sock.cipher()[0]}")
        if options.ca_file:
            reason = _verify_chain(host, port, options, clock)
            report.info["certificate_verifies"] = reason is None
            if reason:
                report.add(WARNING, "certificate", f"the certificate does not verify against {options.ca_file}: {reason}")
        smtp.ehlo()
        after = dict(smtp.esmtp_features)
        report.info["extensions_after_tls"] = sorted(k.upper() for k in after)
        report.info["auth_after_tls"] = after.get("auth", "").upper().split()
        if "EXTERNAL" in report.info["auth_after_tls"]:
            report.add(WARNING, "auth-external", "AUTH EXTERNAL is offered: make sure it is not in TRUST_AUTH_MECH")
            if options.client_cert:
                authenticated = _auth_external(smtp, options, report)
    if options.relay:
        _relay_test(smtp, options.relay[0], options.relay[1], report, authenticated)


def _auth_external(smtp: smtplib.SMTP, options: ProbeOptions, report: ProbeReport) -> str:
    """AUTH EXTERNAL with the client certificate presented; what the server answered is recorded."""
    from cryptography import x509

    with open(options.client_cert, "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    report.info["client_certificate"] = {"subject": cert.subject.rfc4514_string(),
                                         "self_signed": cert.subject == cert.issuer}
    code, msg = smtp.docmd("AUTH", "EXTERNAL =")
    text = msg.decode(errors="replace")
    report.info["auth_external"] = f"{code} {text}"
    if code == 235:
        report.add(WARNING, "auth-external", f"AUTH EXTERNAL accepted ({code} {text}) for the client certificate"
                                             f" {report.info['client_certificate']['subject']}")
        return f"a client that authenticated with AUTH EXTERNAL ({report.info['client_certificate']['subject']})"
    report.add(INFO, "auth-external", f"AUTH EXTERNAL refused ({code} {text})")
    return ""


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
