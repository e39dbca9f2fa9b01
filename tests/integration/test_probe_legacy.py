"""probe-smtp against a server that speaks as a 2003 MTA (tests/legacysmtp.py: TLS 1.0 only, AES128-SHA, a
1024-bit key signed with SHA-1) with its flaws switched on and off; where Debian's testssl.sh and swaks answer
the same question on the same server (testssl.sh: protocol versions; swaks: the plain relay), the probe's
verdict is held to theirs."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess

import pytest

from tests.conftest import run_cli
from tests.legacysmtp import Flaws, LegacySMTP
from tests.mta import protocols_by_testssl

RELAY = ["--relay-test", "probe@example.com", "someone@example.org"]


def probe(server: LegacySMTP, *args: str) -> tuple[int, dict]:
    proc = run_cli("probe-smtp", f"127.0.0.1:{server.port}", "--json", "--timeout", "5", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def severities(report: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in report["findings"]:
        found.setdefault(f["check"], set()).add(f["severity"])
    return found


def test_a_tls_10_only_server_is_probed_to_the_end_and_its_weaknesses_named(tmp_path):
    with LegacySMTP(tmp_path, Flaws()) as server:
        code, report = probe(server, *RELAY)
    info, found = report["info"], severities(report)
    assert code == 1, "findings"
    assert info["tls_version"] == "TLSv1" and info["cipher"] == "AES128-SHA" and info["legacy_tls"] is True
    assert "PLAIN" in info["auth_after_tls"] and info["auth_before_tls"] == []
    assert info["certificate"]["key_bits"] == 1024 and info["certificate"]["signature_hash"] == "sha1"
    assert found["tls-version"] == {"error"} and found["certificate-key"] == {"error"}
    assert found["certificate-signature"] == {"warning"}
    messages = " ".join(f["message"] for f in report["findings"])
    assert "TLSv1 negotiated" in messages and "1024-bit RSA key" in messages and "upgrade failed" not in messages
    assert info["tls_protocols"]["TLSv1"] is True and info["tls_protocols"]["TLSv1.2"] is False
    assert info["cipher_classes"]["AES-CBC"] is True and info["cipher_classes"]["AES-GCM"] is False
    assert {r["verdict"] for r in info["relay_matrix"]} == {"refused"} and len(info["relay_matrix"]) == 16
    assert info["starttls_injection"] == "safe" and found["relay"] == {"info"}


@pytest.mark.parametrize("flaw, check, severity", [
    ("open_relay", "relay", "error"),
    ("auth_before_tls", "auth-before-tls", "warning"),
    ("vrfy", "vrfy", "warning"),
    ("injection", "starttls-injection", "error"),
])
def test_each_insecure_setting_gives_its_finding_and_the_secure_one_does_not(tmp_path, flaw, check, severity):
    with LegacySMTP(tmp_path / "bad", Flaws(**{flaw: True})) as server:
        _, bad = probe(server, *RELAY, "--no-enumerate")
    with LegacySMTP(tmp_path / "good", Flaws()) as server:
        _, good = probe(server, *RELAY, "--no-enumerate")
    assert severity in severities(bad)[check]
    assert severity not in severities(good).get(check, set())


def test_a_modern_server_needs_no_legacy_handshake(tmp_path):
    flaws = Flaws(tls_min=ssl.TLSVersion.TLSv1_2, tls_max=ssl.TLSVersion.TLSv1_3, ciphers="HIGH", key_bits=2048,
                  sha1=False)
    with LegacySMTP(tmp_path, flaws) as server:
        code, report = probe(server)
    info, found = report["info"], severities(report)
    assert code == 0 and "legacy_tls" not in info and info["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert "tls-version" not in found and "certificate-key" not in found
    assert info["tls_protocols"]["TLSv1"] is False and info["tls_protocols"]["TLSv1.2"] is True


def test_smtps_on_connect_is_probed_with_tls_on_connect(tmp_path):
    """Port 465's TLS from the first byte: the stand-in behind a TLS wrapper is not needed; a STARTTLS server
    refuses a TLS hello, which the probe reports as a connection that failed."""
    with LegacySMTP(tmp_path, Flaws()) as server:
        proc = run_cli("probe-smtp", f"127.0.0.1:{server.port}", "--tls-on-connect", "--timeout", "3", "--no-enumerate")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot connect" in proc.stderr


@pytest.mark.skipif(shutil.which("testssl") is None, reason="testssl.sh is not installed (Debian: testssl.sh)")
@pytest.mark.parametrize("modern", [False, True], ids=["tls1.0-only", "tls1.2-and-up"])
def test_the_protocol_versions_agree_with_testssl(tmp_path, modern):
    flaws = Flaws(tls_min=ssl.TLSVersion.TLSv1_2, tls_max=ssl.TLSVersion.TLSv1_3, ciphers="HIGH", key_bits=2048,
                  sha1=False) if modern else Flaws()
    with LegacySMTP(tmp_path, flaws) as server:
        _, report = probe(server)
        theirs = protocols_by_testssl(server.port, tmp_path)
    ours = report["info"]["tls_protocols"]
    for version, (offered, words) in theirs.items():
        assert ours[version] is offered, (version, words)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (Debian: swaks)")
@pytest.mark.parametrize("relay", [True, False], ids=["open", "closed"])
def test_the_relay_verdict_agrees_with_swaks(tmp_path, relay):
    """swaks asks the plain question (MAIL FROM, RCPT TO, QUIT after RCPT): exit 0 when the RCPT was accepted,
    24 when refused; the probe's plain variant must say the same."""
    with LegacySMTP(tmp_path, Flaws(open_relay=relay)) as server:
        _, report = probe(server, *RELAY, "--no-enumerate")
        swaks = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.port}", "--from", RELAY[1], "--to", RELAY[2],
                                "--quit-after", "RCPT"], capture_output=True, text=True, timeout=120)
    assert swaks.returncode == (0 if relay else 24), swaks.stdout
    plain = report["info"]["relay_matrix"][0]
    assert plain["variant"] == "plain" and (plain["verdict"] == "relays") is relay
