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
from dataclasses import dataclass, field

from rebuild.errors import UsageError
from rebuild.files import read_user_file
from rebuild.log import printable
from rebuild.mail import smtpchecks, tlscheck
from rebuild.mail.smtpconn import Deadline, connect

ERROR, WARNING, INFO = "error", "warning", "info"
CLEARTEXT = {"PLAIN", "LOGIN"}
_EHLO_NAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])$")
_ADDRESS = re.compile(r"^[!-;=?-~]{1,254}$")  # printable ASCII without space, < or >


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
    enumerate_tls: bool = True                 # which protocol versions and cipher classes the server accepts
    implicit_tls: bool = False                 # TLS on connect (port 465), not STARTTLS


def _verify_chain(host: str, port: int, options: ProbeOptions, clock: Deadline) -> str | None:
    """None when the certificate verifies against the CA file, else the reason (a second connection)."""
    context = ssl.create_default_context(cafile=options.ca_file)
    context.check_hostname = False
    # the chain is what is checked here: old protocols, ciphers and key sizes are findings of their own
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers(tlscheck.LEGACY_CIPHERS)
    smtp, _ = connect(host, port, options.timeout, options.ehlo_name, options.source, clock)
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


def probe(host: str, port: int, options: ProbeOptions = ProbeOptions()) -> ProbeReport:
    """What *host*:*port* offers before and after STARTTLS (or TLS on connect), whether it relays, answers
    VRFY/EXPN or commands injected before STARTTLS, and which TLS it accepts; never raises for the server's
    behaviour (a finding says it), only for bad input or a connection refused."""
    check_inputs(options.ehlo_name, options.relay)
    for name, path in (("--client-cert", options.client_cert), ("--client-key", options.client_key)):
        if path is not None:
            read_user_file(path, name.lstrip("-").replace("-", " "), max_bytes=1 << 20)
    if bool(options.client_cert) != bool(options.client_key):
        raise UsageError("--client-cert and --client-key go together")
    clock = Deadline(options.deadline)
    report = ProbeReport()
    try:
        tls = _client_context(tlscheck.legacy_context(), options) if options.implicit_tls else None
        smtp, banner = connect(host, port, options.timeout, options.ehlo_name, options.source, clock, tls)
        report.info["banner"] = banner
        try:
            _session(smtp, host, port, options, clock, report)
        except smtplib.SMTPResponseException as exc:
            report.add(ERROR, "reply", f"the server's reply was cut off: {exc.smtp_error!s}")
        except (TimeoutError, smtplib.SMTPServerDisconnected, ssl.SSLError, OSError) as exc:
            if clock.expired:
                report.add(ERROR, "deadline", f"the probe took longer than {options.deadline:g}s; stopped")
            elif isinstance(exc, (socket.timeout, TimeoutError)):
                report.add(ERROR, "timeout", f"the server stopped answering (no reply within {options.timeout:g}s)")
            else:
                report.add(ERROR, "disconnected", f"the server hung up: {exc}")
    finally:
        clock.cancel()
        for live in clock.live:  # every connection the probe opened: RSET, QUIT, closed
            try:
                live.rset()
                live.quit()
            except (smtplib.SMTPException, OSError):
                live.close()
    return report


def _client_context(context: ssl.SSLContext, options: ProbeOptions) -> ssl.SSLContext:
    if options.client_cert:
        try:
            context.load_cert_chain(options.client_cert, options.client_key)
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"--client-cert {options.client_cert}: cannot use it with its key: {exc}") from None
    return context


def _upgrade(smtp: smtplib.SMTP, host: str, port: int, options: ProbeOptions, clock: Deadline,
             report: ProbeReport) -> tuple[smtplib.SMTP | None, ssl.SSLContext | None]:
    """STARTTLS with the host's modern context; where that handshake fails, again on a new connection with the
    legacy one (a 2003 server speaks TLS 1.0 at most). The connection then in TLS, and the context that worked;
    (None, None) with an error finding when neither does."""
    modern = _client_context(tlscheck.modern_context(), options)
    try:
        smtp.starttls(context=modern)
        return smtp, modern
    except (ssl.SSLError, OSError) as exc:
        report.info["modern_tls_failed"] = str(exc)
    except smtplib.SMTPException as exc:
        report.add(ERROR, "starttls", f"STARTTLS advertised but the upgrade failed: {exc}")
        return None, None
    smtp.close()
    legacy = _client_context(tlscheck.legacy_context(), options)
    smtp, _ = connect(host, port, options.timeout, options.ehlo_name, options.source, clock)
    try:
        smtp.ehlo()
        smtp.starttls(context=legacy)
    except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
        report.add(ERROR, "starttls", f"STARTTLS advertised but the upgrade failed, with the host's defaults"
                                      f" ({report.info['modern_tls_failed']}) and with every version and cipher this"
                                      f" OpenSSL has ({exc})")
        return None, None
    report.info["legacy_tls"] = True
    report.add(WARNING, "starttls", "only a legacy handshake works (the host's defaults, TLS 1.2 at security level 2,"
                                    f" were refused: {report.info['modern_tls_failed']})")
    return smtp, legacy


def _session(smtp: smtplib.SMTP, host: str, port: int, options: ProbeOptions, clock: Deadline,
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
    if exposed and not options.implicit_tls:
        report.add(WARNING, "auth-before-tls", f"AUTH {' '.join(exposed)} offered before STARTTLS: passwords can"
                                               " cross the network in clear; set confAUTH_OPTIONS `p'")
    found, report.info["vrfy_expn"] = smtpchecks.vrfy_expn(smtp)
    _add(report, found)
    authenticated = ""
    context = None
    if options.implicit_tls:
        context = _client_context(tlscheck.legacy_context(), options)
    elif "starttls" not in before:
        report.add(ERROR, "starttls", "STARTTLS is not advertised")
    else:
        smtp, context = _upgrade(smtp, host, port, options, clock, report)
        if smtp is None:
            return
    if context is not None:
        _tls_session(smtp, host, report)
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
        server_ip = smtp.sock.getpeername()[0] if smtp.sock else host
        variants = smtpchecks.relay_variants(options.relay[0], options.relay[1], _server_name(report, host),
                                             server_ip)
        def again() -> smtplib.SMTP:  # a new session as this one was: TLS (STARTTLS or on connect), EHLO
            implicit = context if options.implicit_tls else None
            fresh, _ = connect(host, port, options.timeout, options.ehlo_name, options.source, clock, implicit)
            fresh.ehlo()
            if context is not None and not options.implicit_tls:
                fresh.starttls(context=context)
                fresh.ehlo()
            return fresh

        found, rows = smtpchecks.relay_matrix(smtp, variants, authenticated or "an unauthenticated client",
                                              None if authenticated else again)
        report.info["relay_matrix"] = rows
        plain = rows[0]
        report.info["relay_mail_from"] = plain["mail"]
        if "rcpt" in plain:
            report.info["relay_rcpt_to"] = plain["rcpt"]
        _add(report, found)
    if context is not None and not options.implicit_tls:
        found, report.info["starttls_injection"] = smtpchecks.starttls_injection(
            lambda: _fresh(host, port, options, clock), tlscheck.legacy_context(), options.timeout)
        _add(report, found)
    if context is not None and options.enumerate_tls:
        _enumerate(host, port, options, clock, report)


def _fresh(host: str, port: int, options: ProbeOptions, clock: Deadline) -> smtplib.SMTP:
    """A new connection after EHLO (for checks that need a session of their own)."""
    smtp, _ = connect(host, port, options.timeout, options.ehlo_name, options.source, clock)
    smtp.ehlo()
    return smtp


def _tls_session(smtp: smtplib.SMTP, host: str, report: ProbeReport) -> None:
    tls_sock = smtp.sock
    version, cipher = tls_sock.version(), tls_sock.cipher()[0]
    report.info["tls_version"] = version
    report.info["cipher"] = cipher
    der = tls_sock.getpeercert(binary_form=True)
    certificate = tlscheck.describe_certificate(der) if der else None
    if certificate:
        report.info["certificate"] = certificate
    report.add(INFO, "starttls", f"TLS works: {version}, {cipher}")
    name = "" if _is_address(host) else host  # a client that dials an address checks no name
    _add(report, tlscheck.session_findings(version, cipher, certificate, name))


def _enumerate(host: str, port: int, options: ProbeOptions, clock: Deadline, report: ProbeReport) -> None:
    """Which protocol versions and cipher classes the server accepts: one handshake each, on its own
    connection; what this OpenSSL cannot offer is "untestable here"."""
    def accepts(context: ssl.SSLContext | None) -> bool | str:
        if context is None:
            return "untestable here"
        try:
            if options.implicit_tls:
                smtp, _ = connect(host, port, options.timeout, options.ehlo_name, options.source, clock, context)
            else:
                smtp = _fresh(host, port, options, clock)
                smtp.starttls(context=context)
            return True
        except (ssl.SSLError, smtplib.SMTPException, ConnectionError) as exc:
            return False if not clock.expired else f"not tested: {exc}"
    versions = {v: accepts(tlscheck.pinned_context(version=v)) for v in tlscheck.VERSIONS}
    classes = {c: accepts(tlscheck.pinned_context(cipher_class=c)) for c in tlscheck.CIPHER_CLASSES}
    report.info["tls_protocols"] = versions
    report.info["cipher_classes"] = classes
    old = [v for v in tlscheck.OLD_VERSIONS if versions.get(v) is True]
    if old and (versions.get("TLSv1.2") is True or versions.get("TLSv1.3") is True):
        report.add(WARNING, "tls-versions", f"also accepts {', '.join(old)}: {tlscheck.FIX_VERSION}")
    weak = [c for c in tlscheck.WEAK_CLASSES if classes.get(c) is True]
    if weak:
        report.add(ERROR, "tls-ciphers", f"accepts {', '.join(weak)} ciphers: {tlscheck.FIX_CIPHERS}")


def _server_name(report: ProbeReport, host: str) -> str:
    """The name the server greets with (its banner's first word), else the host probed."""
    words = report.info.get("banner", "").split()
    return words[0] if words and "." in words[0] else host


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host.strip("[]"))
        return True
    except OSError:
        return False


def _add(report: ProbeReport, found: list[tuple[str, str, str]]) -> None:
    for severity, check, message in found:
        report.add(severity, check, message)


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
    """The report as a table; what the server sent is shown with control characters replaced."""
    lines = []
    for key, value in report.info.items():
        if key == "relay_matrix":
            lines.append(f"{key:<22} " + "; ".join(f"{r['variant']}={r['verdict']}" for r in value))
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = " ".join(map(str, value)) or "-"
        lines.append(printable(f"{key:<22} {value}"))
    lines.append("")
    for f in sorted(report.findings, key=lambda f: {ERROR: 0, WARNING: 1, INFO: 2}[f.severity]):
        lines.append(printable(f"{f.severity:<8} {f.check:<20} {f.message}"))
    errors = sum(f.severity == ERROR for f in report.findings)
    warnings = sum(f.severity == WARNING for f in report.findings)
    lines.append(f"{errors} errors, {warnings} warnings")
    return "\n".join(lines)


def report_json(report: ProbeReport) -> str:
    return json.dumps({"info": report.info, "findings": [f.as_dict() for f in report.findings]}, indent=2)
