"""``rebuild audit-mc``: dangerous settings in a sendmail.mc (m4), with line numbers and fixes.

A small m4 reader, enough for .mc files: `quotes' (nested), ``dnl`` and ``#`` comments,
macro calls with arguments. No macro is expanded; ``define`` records the last value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import UsageError
from rebuild.files import read_user_file

ERROR, WARNING = "error", "warning"
BROAD_CA_STORES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
    "/etc/ssl/cert.pem",
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Finding:
    line: int
    severity: str
    rule: str
    message: str
    fix: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _unquote(text: str) -> str:
    """*text* without its outer layers of `quotes' (and the blanks between them), in one pass: each opening
    quote's partner is found with a stack, so 20,000 nested layers take no longer than their length."""
    partner = {}
    stack = []
    for i, ch in enumerate(text):
        if ch == "`":
            stack.append(i)
        elif ch == "'" and stack:
            partner[stack.pop()] = i
    left, right = 0, len(text) - 1
    while left <= right and text[left].isspace():
        left += 1
    while right >= left and text[right].isspace():
        right -= 1
    while left < right and text[left] == "`" and partner.get(left) == right:
        left, right = left + 1, right - 1
        while left <= right and text[left].isspace():
            left += 1
        while right >= left and text[right].isspace():
            right -= 1
    return text[left:right + 1]


def parse_calls(text: str) -> list[Call]:
    """Every macro call with arguments, outside quotes and comments, in order."""
    return _scan(text)[0]


def _scan(text: str) -> tuple[list[Call], list[tuple[int, str]]]:
    """The calls, and what the reader could not follow (line, what): an unclosed quote or parenthesis,
    changequote or changecom (after which quotes and comments mean something else)."""
    calls: list[Call] = []
    problems: list[tuple[int, str]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch == "`":  # a quoted string at top level is literal text
            depth, start_line = 0, line
            while i < n:
                depth += text[i] == "`"
                depth -= text[i] == "'"
                line += text[i] == "\n"
                i += 1
                if depth == 0:
                    break
            if depth > 0:
                problems.append((start_line, "a quote opened here is never closed"))
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            m = _WORD.match(text, i)
            word, i = m.group(), m.end()
            if word == "dnl":
                while i < n and text[i] != "\n":
                    i += 1
                i += 1  # dnl eats the newline too
                line += 1
            elif word in ("changequote", "changecom", "changeword"):
                problems.append((line, f"{word} changes how the file reads; nothing after it could be audited"))
                break
            elif i < n and text[i] == "(":
                start_line = line
                args, i, line, closed = _read_args(text, i + 1, line)
                if not closed:
                    problems.append((start_line, f"{word}( is never closed"))
                calls.append(Call(word, tuple(_unquote(a) for a in args), start_line))
        else:
            i += 1
    return calls, problems


def _read_args(text: str, i: int, line: int) -> tuple[list[str], int, int, bool]:
    args, current, parens, quotes = [], [], 0, 0
    n = len(text)
    while i < n:
        ch = text[i]
        line += ch == "\n"
        if quotes:
            quotes += ch == "`"
            quotes -= ch == "'"
        elif ch == "`":
            quotes = 1
        elif ch == "(":
            parens += 1
        elif ch == ")":
            if parens == 0:
                args.append("".join(current))
                return args, i + 1, line, True
            parens -= 1
        elif ch == "," and parens == 0:
            args.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    args.append("".join(current))  # unterminated: take what there is
    return args, i, line, False


def _mechs(value: str) -> list[str]:
    return [m.upper() for m in value.replace(",", " ").split()]


def audit(text: str) -> list[Finding]:
    calls, problems = _scan(text)
    defines: dict[str, tuple[str, int]] = {}
    trust: tuple[list[str], int] | None = None
    features: list[tuple[str, int]] = []
    for call in calls:
        if call.name == "define" and call.args:
            defines[call.args[0]] = (call.args[1] if len(call.args) > 1 else "", call.line)
        elif call.name == "TRUST_AUTH_MECH" and call.args:
            trust = (_mechs(call.args[0]), call.line)
        elif call.name == "FEATURE" and call.args:
            features.append((call.args[0], call.line))
    findings: list[Finding] = []
    offered = (_mechs(defines["confAUTH_MECHANISMS"][0]), defines["confAUTH_MECHANISMS"][1]) \
        if "confAUTH_MECHANISMS" in defines else None
    ca_file = defines.get("confCACERT", ("", 0))[0]
    ca_path = defines.get("confCACERT_PATH", ("", 0))[0]

    if trust and "EXTERNAL" in trust[0]:
        broad = [p for p in (ca_file, ca_path) if p.rstrip("/") in BROAD_CA_STORES]
        message = ("TRUST_AUTH_MECH trusts EXTERNAL: anyone who can start TLS with a certificate whose DN matches an"
                   " allowed one relays through this server (an open relay)")
        if broad:
            message += f"; with the broad CA store {broad[0]}, any certificate from any of those CAs will do"
        findings.append(Finding(trust[1], ERROR, "trust-external", message,
                                "remove EXTERNAL from TRUST_AUTH_MECH; allow relaying by client certificate with"
                                " explicit CERTISSUER/CERTSUBJECT entries in the access map instead"))
    if trust and offered and set(trust[0]) != set(offered[0]):
        findings.append(Finding(
            trust[1], WARNING, "mechanism-lists-differ",
            f"confAUTH_MECHANISMS offers {' '.join(offered[0]) or 'nothing'} (line {offered[1]}) but TRUST_AUTH_MECH"
            f" trusts {' '.join(trust[0]) or 'nothing'}: clients pick from the offered list and do not retry",
            "make confAUTH_MECHANISMS and TRUST_AUTH_MECH list the same mechanisms"))
    elif offered and not trust and offered[0]:
        findings.append(Finding(offered[1], WARNING, "no-trust-auth-mech",
                                "AUTH is offered but TRUST_AUTH_MECH is not set: authenticated clients cannot relay",
                                "add TRUST_AUTH_MECH with the same list as confAUTH_MECHANISMS"))
    cleartext = sorted({m for lst in (offered, trust) if lst for m in lst[0]} & {"PLAIN", "LOGIN"})
    if cleartext:
        options, options_line = defines.get("confAUTH_OPTIONS", ("", 0))
        if "p" not in options.replace(",", " ").split():
            line = options_line or (offered or trust)[1]
            findings.append(Finding(line, WARNING, "cleartext-auth",
                                    f"{' and '.join(cleartext)} allowed without the `p' flag in confAUTH_OPTIONS:"
                                    " passwords may cross the wire in clear before STARTTLS",
                                    "define(`confAUTH_OPTIONS', `A p') so PLAIN/LOGIN are offered only inside TLS"))
    tls = {"confSERVER_CERT": "confSERVER_CERT" in defines, "confSERVER_KEY": "confSERVER_KEY" in defines,
           "confCACERT or confCACERT_PATH": "confCACERT" in defines or "confCACERT_PATH" in defines}
    if any(tls.values()) and not all(tls.values()):
        missing = [k for k, v in tls.items() if not v]
        line = min(defines[k][1] for k in ("confSERVER_CERT", "confSERVER_KEY", "confCACERT", "confCACERT_PATH") if k in defines)
        findings.append(Finding(line, ERROR, "starttls-incomplete",
                                f"STARTTLS is configured without {', '.join(missing)}: sendmail will not offer it",
                                "define all of confSERVER_CERT, confSERVER_KEY and confCACERT (or confCACERT_PATH)"))
    elif not any(tls.values()):
        findings.append(Finding(1, WARNING, "starttls-off", "no server certificate is configured: STARTTLS is not offered",
                                "define confCACERT_PATH, confCACERT, confSERVER_CERT and confSERVER_KEY"))
    if ("confCLIENT_CERT" in defines) != ("confCLIENT_KEY" in defines):
        which = "confCLIENT_CERT" if "confCLIENT_CERT" in defines else "confCLIENT_KEY"
        findings.append(Finding(defines[which][1], WARNING, "client-cert-incomplete",
                                f"{which} is set without its pair: outgoing TLS will not present a certificate",
                                "define both confCLIENT_CERT and confCLIENT_KEY, or neither"))
    dangerous = {
        "promiscuous_relay": (ERROR, "relays mail from anyone to anywhere (an open relay)", "remove it"),
        "relay_based_on_MX": (WARNING, "relays for any domain that points its MX at this host, which anyone can set up",
                              "list the domains to relay for in relay-domains or the access map"),
        "relay_local_from": (WARNING, "relays when the envelope sender claims a local domain, which is trivially forged",
                             "remove it; authenticate senders with SMTP AUTH instead"),
        "loose_relay_check": (WARNING, "allows %-hack relaying (user%other@this.host)", "remove it"),
        "accept_unresolvable_domains": (WARNING, "accepts senders from domains that do not resolve (spam, forgery)",
                                        "remove it unless DNS is unavailable by design"),
        "accept_unqualified_senders": (WARNING, "accepts envelope senders without a domain", "remove it"),
        "relay_entire_domain": (WARNING, "relays for every host in the local domains, not just listed ones",
                                "list relay hosts explicitly"),
    }
    for name, line in features:
        if name in dangerous:
            severity, why, fix = dangerous[name]
            findings.append(Finding(line, severity, f"feature-{name}", f"FEATURE(`{name}') {why}", fix))
    for line, what in problems:
        findings.append(Finding(line, ERROR, "unreadable", f"the audit could not read the file past here: {what};"
                                " its findings may be incomplete, so the file does not pass",
                                "fix the quoting or parentheses (or audit the file without changequote)"))
    return sorted(findings, key=lambda f: (f.severity != ERROR, f.line))


MAX_MC = 1 << 20  # a sendmail.mc is a few KiB


def audit_file(path: Path) -> list[Finding]:
    raw = read_user_file(Path(path), "sendmail.mc", max_bytes=MAX_MC)
    if b"\0" in raw:
        raise UsageError(f"{path}: binary file, not a sendmail.mc")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return audit(text)


def format_findings(findings: list[Finding], source: str) -> str:
    if not findings:
        return f"{source}: no findings"
    lines = []
    for f in findings:
        lines.append(f"{source}:{f.line}: {f.severity}: {f.message} [{f.rule}]")
        lines.append(f"    fix: {f.fix}")
    errors = sum(f.severity == ERROR for f in findings)
    lines.append(f"{len(findings)} findings: {errors} errors, {len(findings) - errors} warnings")
    return "\n".join(lines)


def findings_json(findings: list[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2)
