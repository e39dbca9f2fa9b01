"""What ``probe-smtp`` asks of a server beyond its extensions: the relay variants nmap's ``smtp-open-relay``
tries, VRFY/EXPN exposure, and STARTTLS command injection (CVE-2011-0411).

Every check speaks MAIL/RCPT/VRFY/EXPN/RSET only: nothing is ever delivered. Each returns findings as
(severity, check, message) and a record for the report; none raises for what the server answers.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable

ERROR, WARNING, INFO = "error", "warning", "info"


def relay_variants(sender: str, recipient: str, server_name: str, server_ip: str) -> list[tuple[str, str, str]]:
    """(name, MAIL FROM, RCPT TO) as nmap's smtp-open-relay tries them: senders of the server's own domain,
    the percent hack, quoted local parts, bang paths and source routes through the server's name or address."""
    user, _, domain = recipient.partition("@")
    from_user = sender.partition("@")[0] or "relaytest"
    ip = f"[{server_ip}]"
    return [
        ("plain", sender, recipient),
        ("null-sender", "", recipient),
        ("sender-at-server", f"{from_user}@{server_name}", recipient),
        ("sender-at-ip", f"{from_user}@{ip}", recipient),
        ("percent-hack", sender, f"{user}%{domain}@{server_name}"),
        ("percent-hack-ip", sender, f"{user}%{domain}@{ip}"),
        ("quoted", sender, f'"{recipient}"'),
        ("quoted-percent", sender, f'"{user}%{domain}"'),
        ("double-at", sender, f"{recipient}@{server_name}"),
        ("quoted-at-server", sender, f'"{recipient}"@{server_name}'),
        ("double-at-ip", sender, f"{recipient}@{ip}"),
        ("source-route", sender, f"@{server_name}:{recipient}"),
        ("source-route-ip", sender, f"@{ip}:{recipient}"),
        ("bang-path", sender, f"{domain}!{user}"),
        ("bang-path-server", sender, f"{domain}!{user}@{server_name}"),
        ("bang-path-ip", sender, f"{domain}!{user}@{ip}"),
    ]


def relay_matrix(smtp: smtplib.SMTP, variants: list[tuple[str, str, str]], who: str,
                 reconnect: Callable[[], smtplib.SMTP] | None = None) -> tuple[list, list[dict]]:
    """Each variant's MAIL FROM and RCPT TO (RSET between): findings and a row per variant. A server that ends
    the session part way (exim's smtp_accept_max_nonmail answers 421 after ten commands without mail) is
    asked the rest in a new session from *reconnect*, as it was before (TLS included)."""
    findings, rows = [], []
    sessions = 1
    for name, sender, recipient in variants:
        for attempt in (1, 2):
            try:
                row = _variant(smtp, name, sender, recipient)
                break
            except smtplib.SMTPServerDisconnected:
                if attempt == 2 or reconnect is None:
                    raise
                smtp = reconnect()
                sessions += 1
        if row["verdict"] == "relays":
            findings.append((ERROR, "relay", f"OPEN RELAY ({name}): MAIL FROM:<{sender}> RCPT TO:<{recipient}> accepted"
                                             f" ({row['rcpt']}) from {who}"))
        rows.append(row)
    if sessions > 1:
        findings.append((INFO, "relay", f"the server ended the session part way (too many commands without mail):"
                                        f" the {len(variants)} variants were asked in {sessions} sessions"))
    smtp.rset()
    if rows and all(r["verdict"] == "inconclusive" for r in rows):
        findings.append((WARNING, "relay", "inconclusive: every relay variant was refused at MAIL FROM or answered"
                                           " oddly; the relay test proves nothing (without DNS an unresolvable sender"
                                           " domain is refused first)"))
    elif not any(f[0] == ERROR for f in findings):
        refused = sum(r["verdict"] == "refused" for r in rows)
        findings.append((INFO, "relay", f"relaying refused ({refused} of {len(rows)} variants refused, none accepted)"))
    return findings, rows


def _variant(smtp: smtplib.SMTP, name: str, sender: str, recipient: str) -> dict:
    """One variant's MAIL FROM and RCPT TO after RSET; SMTPServerDisconnected when the server hangs up (a 421
    reply included: smtplib closes the connection on it)."""
    code, _ = smtp.rset()
    if code == 421:
        raise smtplib.SMTPServerDisconnected("421 at RSET")
    code, msg = smtp.docmd("MAIL", f"FROM:<{sender}>")
    if code == 421:
        raise smtplib.SMTPServerDisconnected("421 at MAIL")
    row = {"variant": name, "mail_from": sender, "rcpt_to": recipient, "mail": f"{code} {_text(msg)}"}
    if code >= 400:
        row["verdict"] = "inconclusive"
        return row
    code, msg = smtp.docmd("RCPT", f"TO:<{recipient}>")
    if code == 421:
        raise smtplib.SMTPServerDisconnected("421 at RCPT")
    row["rcpt"] = f"{code} {_text(msg)}"
    row["verdict"] = "relays" if code in (250, 251) else "refused" if code >= 500 or code in (450, 451, 452) \
        else "inconclusive"
    return row


def vrfy_expn(smtp: smtplib.SMTP, user: str = "root") -> tuple[list, dict]:
    """VRFY and EXPN of a local user: 250/251 gives addresses away (252 is the polite "cannot verify")."""
    findings, record = [], {}
    for verb in ("VRFY", "EXPN"):
        code, msg = smtp.docmd(verb, user)
        record[verb.lower()] = f"{code} {_text(msg)}"
        if code in (250, 251):
            findings.append((WARNING, verb.lower(), f"{verb} {user} answered {code} {_text(msg)}: it tells anyone which"
                                                    " addresses exist; define(`confPRIVACY_FLAGS', `goaway')"))
    return findings, record


def starttls_injection(sock_factory, context: ssl.SSLContext, timeout: float) -> tuple[list, str]:
    """CVE-2011-0411: send ``STARTTLS\\r\\nRSET\\r\\n`` in one segment on a fresh connection (*sock_factory*
    gives a connected SMTP after EHLO); a server that answers the RSET after the handshake runs commands an
    attacker injected before TLS. Returns findings and the verdict."""
    smtp = sock_factory()
    try:
        smtp.sock.sendall(b"STARTTLS\r\nRSET\r\n")
        code, msg = smtp.getreply()
        if code != 220:
            return [(INFO, "starttls-injection", f"not tested: STARTTLS answered {code} {_text(msg)}")], "untested"
        try:
            tls = context.wrap_socket(smtp.sock, server_hostname=None)
        except (ssl.SSLError, OSError) as exc:
            # a server that answered the RSET in clear before TLS breaks the handshake: also a sign it read it
            return [(WARNING, "starttls-injection", f"inconclusive: the handshake after a pipelined STARTTLS failed"
                                                    f" ({exc})")], "inconclusive"
        tls.settimeout(min(timeout, 1.5))  # a server that runs injected commands answers them at once
        try:
            answer = tls.recv(512)
        except (TimeoutError, ssl.SSLError, OSError):
            answer = b""
        finally:
            tls.close()
        if answer:
            line = answer.decode(errors="replace").splitlines()[0] if answer.strip() else repr(answer)
            return [(ERROR, "starttls-injection", f"commands sent before STARTTLS were answered after the handshake"
                                                  f" ({line}): command injection (CVE-2011-0411); upgrade the MTA")], \
                "vulnerable"
        return [(INFO, "starttls-injection", "commands pipelined with STARTTLS are discarded")], "safe"
    finally:
        try:
            smtp.close()
        except OSError:
            pass


def _text(msg: bytes) -> str:
    return " ".join(msg.decode(errors="replace").split())[:200]
