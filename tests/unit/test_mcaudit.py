"""rebuild audit-mc on .mc files covering each rule, and ones that must not fire."""

from __future__ import annotations

import json

import pytest

from rebuild.mail.mcaudit import audit, parse_calls
from tests.conftest import DATA, run_cli

CLEAN = (DATA / "mc" / "clean.mc").read_text()


def rules(text: str) -> list[tuple[int, str, str]]:
    return [(f.line, f.severity, f.rule) for f in audit(text)]


def test_clean_file_has_no_findings():
    assert rules(CLEAN) == []


def test_m4_reader_handles_quotes_dnl_and_both_define_spellings():
    calls = parse_calls("dnl define(`x', `1')\ndefine(`a', `b, c')dnl\ndefine(d,`e')\nfoo(`a `nested' (paren)', x)\n")
    assert [(c.name, c.args, c.line) for c in calls] == [
        ("define", ("a", "b, c"), 2), ("define", ("d", "e"), 3), ("foo", ("a `nested' (paren)", "x"), 4)]


@pytest.mark.parametrize(
    "change, expected",
    [
        (("TRUST_AUTH_MECH(`DIGEST-MD5 PLAIN LOGIN')", "TRUST_AUTH_MECH(`EXTERNAL DIGEST-MD5 PLAIN LOGIN')"),
         [(8, "error", "trust-external"), (8, "warning", "mechanism-lists-differ")]),
        (("TRUST_AUTH_MECH(`DIGEST-MD5 PLAIN LOGIN')", "TRUST_AUTH_MECH(`DIGEST-MD5')"),
         [(8, "warning", "mechanism-lists-differ")]),
        (("`A p'", "`A'"), [(6, "warning", "cleartext-auth")]),
        (("define(`confSERVER_KEY', `/etc/mail/certs/server.key')dnl\n", ""), [(9, "error", "starttls-incomplete")]),
        (("FEATURE(`access_db')", "FEATURE(`promiscuous_relay')"), [(13, "error", "feature-promiscuous_relay")]),
        (("FEATURE(`access_db')", "FEATURE(relay_based_on_MX)"), [(13, "warning", "feature-relay_based_on_MX")]),
        (("FEATURE(`access_db')", "define(`confCLIENT_CERT', `/c.pem')"), [(13, "warning", "client-cert-incomplete")]),
    ],
)
def test_each_rule(change, expected):
    old, new = change
    assert old in CLEAN
    assert rules(CLEAN.replace(old, new)) == expected


def test_no_certificates_at_all_is_a_warning():
    text = "\n".join(line for line in CLEAN.splitlines() if "CERT" not in line and "confSERVER_KEY" not in line)
    assert rules(text) == [(1, "warning", "starttls-off")]


def test_external_with_a_system_ca_bundle_says_so():
    text = CLEAN.replace("/etc/mail/certs/ca.pem", "/etc/ssl/certs/ca-certificates.crt").replace(
        "`DIGEST-MD5 PLAIN LOGIN')", "`EXTERNAL DIGEST-MD5 PLAIN LOGIN')")
    (finding,) = [f for f in audit(text) if f.rule == "trust-external"]
    assert "broad CA store /etc/ssl/certs/ca-certificates.crt" in finding.message


def test_cli_exit_codes_and_json(tmp_path):
    good = tmp_path / "good.mc"
    good.write_text(CLEAN)
    proc = run_cli("audit-mc", str(good))
    assert proc.returncode == 0 and proc.stdout.strip() == f"{good}: no findings"
    bad = tmp_path / "bad.mc"
    bad.write_text(CLEAN.replace("`DIGEST-MD5 PLAIN LOGIN')", "`EXTERNAL DIGEST-MD5 PLAIN LOGIN')"))
    proc = run_cli("audit-mc", str(bad), "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data[0]["rule"] == "trust-external" and data[0]["line"] == 8 and data[0]["fix"]
    warn = tmp_path / "warn.mc"
    warn.write_text(CLEAN.replace("`A p'", "`A'"))
    assert run_cli("audit-mc", str(warn)).returncode == 0, "warnings alone exit 0"
    missing = run_cli("audit-mc", str(tmp_path / "none.mc"))
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    binary = tmp_path / "bin.mc"
    binary.write_bytes(b"\0\1\2")
    assert run_cli("audit-mc", str(binary)).returncode == 2
