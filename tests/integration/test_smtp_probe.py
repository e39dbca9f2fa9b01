"""rebuild probe-smtp (and audit-mc on the same configuration) against a real sendmail on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.conftest import run_cli
from tests.mta import Sendmail, Variant, available

pytestmark = [pytest.mark.mta, pytest.mark.skipif(available() is not None and not __import__("os").environ.get("CI"),
                                                  reason=f"no test MTA here: {available()}")]

RELAY = ["--relay-test", "probe@example.com", "someone@example.org", "--source", "127.0.0.2"]


def probe(server: Sendmail, *args: str) -> tuple[int, dict]:
    proc = run_cli("probe-smtp", f"127.0.0.1:{server.port}", "--json", "--timeout", "10", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def checks(report: dict) -> dict[str, str]:
    return {f["check"]: f["severity"] for f in report["findings"]}


def test_starttls_with_auth_inside_tls_and_closed_relay(tmp_path):
    with Sendmail(tmp_path, Variant()) as mta:
        code, report = probe(mta, "--ca-file", str(mta.ca), *RELAY)
    info = report["info"]
    assert code == 0
    assert "STARTTLS" in info["extensions_before_tls"]
    assert info["auth_before_tls"] == [] and info["auth_after_tls"] == ["PLAIN", "LOGIN"]
    assert info["tls_version"].startswith("TLSv1.")
    assert info["certificate"]["subject"] == "CN=mail.rebuild.test" and info["certificate"]["self_signed"]
    assert info["certificate_verifies"] is True
    assert info["relay_rcpt_to"].startswith("550")
    assert {c: s for c, s in checks(report).items() if c in ("starttls", "relay")} == {"starttls": "info", "relay": "info"}
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert report["info"]["starttls_injection"] == "safe", "sendmail 8.17 discards what came with STARTTLS"
    assert report["info"]["tls_protocols"]["TLSv1.2"] is True and "legacy_tls" not in info
    assert run_cli("audit-mc", str(mta.mc)).returncode == 0


def test_certificate_not_verifying_against_another_ca(tmp_path):
    other = tmp_path / "other-ca.pem"
    with Sendmail(tmp_path / "a", Variant()) as mta:
        with Sendmail(tmp_path / "b", Variant()) as second:
            other.write_bytes(second.ca.read_bytes())
        code, report = probe(mta, "--ca-file", str(other))
    assert report["info"]["certificate_verifies"] is False
    assert checks(report)["certificate"] == "warning" and code == 0


def test_starttls_off_and_cleartext_auth(tmp_path):
    with Sendmail(tmp_path, Variant(starttls=False, auth_options="A")) as mta:
        code, report = probe(mta)
    assert code == 1
    assert {c: s for c, s in checks(report).items() if c not in ("vrfy", "expn")} == {"starttls": "error",
                                                                                     "auth-before-tls": "warning"}
    assert report["info"]["auth_before_tls"] == ["PLAIN", "LOGIN"]
    audit = run_cli("audit-mc", str(mta.mc), "--json")
    assert {f["rule"] for f in json.loads(audit.stdout)} == {"starttls-off", "cleartext-auth",
                                                             "feature-accept_unresolvable_domains"}


def test_open_relay_is_an_error(tmp_path):
    with Sendmail(tmp_path, Variant(promiscuous=True)) as mta:
        code, report = probe(mta, *RELAY)
    assert code == 1
    assert checks(report)["relay"] == "error"
    assert report["info"]["relay_rcpt_to"].startswith("250")
    assert run_cli("audit-mc", str(mta.mc)).returncode == 1


def test_trusting_external_is_caught_by_the_audit_not_offered_without_a_client_cert(tmp_path):
    variant = Variant(mechanisms="EXTERNAL PLAIN LOGIN", trusted="EXTERNAL PLAIN LOGIN")
    with Sendmail(tmp_path, variant) as mta:
        code, report = probe(mta, *RELAY)
    assert "EXTERNAL" not in report["info"]["auth_after_tls"], "offered only to clients whose certificate verifies"
    assert checks(report)["relay"] == "info"
    audit = run_cli("audit-mc", str(mta.mc), "--json")
    assert audit.returncode == 1
    assert [f["rule"] for f in json.loads(audit.stdout) if f["severity"] == "error"] == ["trust-external"]


def test_unresolvable_sender_makes_the_relay_test_inconclusive(tmp_path):
    with Sendmail(tmp_path, Variant(accept_unresolvable=False)) as mta:
        code, report = probe(mta, *RELAY)
    # the plain variant's sender is refused (no DNS): inconclusive alone; the null sender and the server's own
    # domain get to RCPT, where relaying is refused: the matrix makes the verdict
    plain, null = report["info"]["relay_matrix"][:2]
    assert plain["verdict"] == "inconclusive" and null["variant"] == "null-sender" and null["verdict"] == "refused"
    assert checks(report)["relay"] == "info"
    assert code == 0


def test_silent_server_times_out(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    start = time.monotonic()
    proc = run_cli("probe-smtp", f"127.0.0.1:{port}", "--timeout", "1")
    assert proc.returncode == 2 and "timed out" in proc.stderr
    assert time.monotonic() - start < 10
    for conn, _ in held:
        conn.close()
    listener.close()


def test_bad_target_is_usage_error():
    assert run_cli("probe-smtp", "host:notaport").returncode == 2
