"""The whole 2003 procedure on a mail server rebuild built (tests/sendmail_procedure.py): sendmail 8.17 with
STARTTLS and SASL from its upstream tarball, built for the i686 test target with errata 73 (floors, SRPM
install, spec edit, build), published into a signed repository, installed from it by the target's rpm,
configured with certificates and AUTH lists, started, audited and probed; then the same with EXTERNAL
trusted. Skipped, with the reason, where Debian's archive cannot be reached."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ROOT, run_cli
from tests.sendmail_procedure import Config, Server, certificates, make_srpm, mc_text, runtime_image

pytestmark = [pytest.mark.docker, pytest.mark.mta]
RELAY = ["--relay-test", "probe@example.com", "victim@example.org", "--source", "127.0.0.2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, i686):
    """The sendmail recipe of specs/examples built on the i686 target, and a signed repository holding it."""
    from tests.i686tree import Unavailable
    from tests.signing import make_key

    home, env, tree, image = i686
    base = tmp_path_factory.mktemp("sendmail")
    try:
        srpm = make_srpm(image, base / "srpm")
    except Unavailable as exc:
        pytest.skip(f"sendmail's source needs Debian's source archive: {exc}")
    recipe = base / "sendmail-starttls.yaml"
    text = (ROOT / "specs" / "examples" / "sendmail-starttls.yaml").read_text()
    recipe.write_text(text.replace("../../build/demo-sendmail/SRPMS/" + srpm.name, srpm.as_uri()))
    (base / "sendmail-starttls-floors.yaml").write_text(
        (ROOT / "specs" / "examples" / "sendmail-starttls-floors.yaml").read_text())
    proc = run_cli("build", str(recipe), "--out", str(base / "out"), "--json", env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    result = base / "out" / json.loads(proc.stdout)[0]["directory"].rsplit("/", 1)[1]
    key = make_key(base / "gpg", "Repo Signer <repo@example.invalid>")
    repo = base / "repo"
    published = run_cli("publish", str(result), "--repo", str(repo), "--sign-key", key.keyid, "--gpg-home",
                        str(key.home), env=env)
    assert published.returncode == 0, published.stderr
    return result, repo, runtime_image(result, env), base


def test_floors_srpm_edit_build_and_compile_options(built):
    """Steps 1-4 and 6's `sendmail -d0.1 -bv`: floors met, the SRPM installed and edited to errata 73, the
    build by the target's rpm, STARTTLS and SASLv2 among the compile options."""
    result, repo, image, base = built
    manifest = json.loads((result / "manifest.json").read_text())
    assert result.name == "sendmail-8.17.1.9-1.73"
    assert manifest["spec"]["changes"] and "errata '80' -> '73'" in manifest["spec"]["changes"][0]
    assert "db3-devel" in manifest["spec"]["buildrequires_after"], "the errata-73 branch of the BuildRequires"
    assert {f["name"]: f["status"] for f in manifest["floors"]["results"]} == {
        "openssl-devel": "ok", "cyrus-sasl-devel": "ok", "db4-devel": "ok", "m4": "ok"}
    checks = {c["name"]: c for c in manifest["checks"]}
    assert checks["starttls-compiled-in"]["passed"] and checks["sasl-compiled-in"]["passed"]
    assert "STARTTLS" in checks["starttls-compiled-in"]["output"] and "SASLv2" in checks["sasl-compiled-in"]["output"]
    (binary,) = [p for p in (result / "RPMS").rglob("sendmail-8*.rpm")]
    requires = subprocess.run(["rpm", "-qp", "--requires", str(binary)], capture_output=True, text=True).stdout.split()
    assert {"libssl.so.3", "libsasl2.so.2", "libdb-5.3.so"} <= set(requires), "the errata-73 link flag: -ldb-5.3"
    assert (repo / "SHA256SUMS.asc").is_file()


def test_the_2003_configuration_serves_starttls_and_auth_only_inside_tls(built, tmp_path):
    """Steps 5-7 on the built server: certificates and identical AUTH lists with the p flag (audit-mc
    passes), EHLO lists STARTTLS, the certificate is shown and verifies, AUTH is offered only after TLS,
    and an unauthenticated client cannot relay."""
    result, repo, image, base = built
    certs = certificates(tmp_path / "certs")
    mc = tmp_path / "sendmail.mc"
    mc.write_text(mc_text(Config()))
    audit = run_cli("audit-mc", str(mc))
    assert audit.returncode == 0, audit.stdout
    with Server(image, repo, tmp_path / "server", Config(), certs) as server:
        assert "sendmail-cf" in server.installed.stdout, "installed from the signed repository by the image's rpm"
        proc = server.probe("--ca-file", str(certs["ca"]), *RELAY, "--json")
    report = json.loads(proc.stdout)
    info, findings = report["info"], {f["check"]: f for f in report["findings"]}
    assert "STARTTLS" in info["extensions_before_tls"]
    assert info["certificate"]["subject"] == "CN=mail.rebuild.test" and info["certificate_verifies"] is True
    assert info["auth_before_tls"] == [] and set(info["auth_after_tls"]) == {"LOGIN", "PLAIN"}
    assert findings["relay"]["severity"] == "info" and info["relay_rcpt_to"].startswith("550 5.7.1"), \
        "relaying denied by policy, not for want of DNS"
    assert proc.returncode == 0, proc.stdout


def test_external_trusted_is_caught_and_what_the_server_does_is_recorded(built, tmp_path):
    """EXTERNAL in TRUST_AUTH_MECH: audit-mc fails it; the probe presents a self-signed client certificate
    whose subject matches an allowed one. The 2003 sendmail took the subject of a certificate that did not
    verify as the EXTERNAL identity; 8.17 sets it only for a verified certificate, so EXTERNAL is not
    offered and the relay is refused: the test asserts that, as it happens."""
    result, repo, image, base = built
    certs = certificates(tmp_path / "certs", client_subject="CN=trusted-relay.rebuild.test")
    config = Config(mechanisms="EXTERNAL LOGIN PLAIN", trusted="EXTERNAL LOGIN PLAIN")
    mc = tmp_path / "sendmail.mc"
    mc.write_text(mc_text(config))
    audit = run_cli("audit-mc", str(mc), "--json")
    assert audit.returncode == 1 and any(f["rule"] == "trust-external" for f in json.loads(audit.stdout))
    with Server(image, repo, tmp_path / "server", config, certs) as server:
        proc = server.probe("--client-cert", str(certs["client"]), "--client-key", str(certs["client_key"]), *RELAY,
                            "--json")
    report = json.loads(proc.stdout)
    info, findings = report["info"], {f["check"]: f for f in report["findings"]}
    assert "EXTERNAL" not in info["auth_after_tls"], "8.17 offers EXTERNAL only for a verified certificate"
    assert "auth_external" not in info
    assert findings["relay"]["severity"] == "info" and "refused" in findings["relay"]["message"]
