"""The 2003 procedure on a real mail server, each step run by rebuild: a sendmail with STARTTLS and SASL
built from its upstream tarball for the i686 test target, published, installed, configured, started and
probed. Used by tests/integration/test_sendmail.py and by `make demo-sendmail`.

    python -m tests.sendmail_procedure OUT      # the demo: prints the result, the probe and the audit

The source is sendmail 8.17's upstream tarball from Debian's source archive (`apt-get source
--download-only` with a private deb-src configuration), verified against the .dsc's sha256 and cached;
tests/data/sendmail/sendmail.spec (Red Hat's 2003 style) stands in for Red Hat's own 8.12.8 spec.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from tests.i686tree import Unavailable, cache_root

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "data" / "sendmail" / "sendmail.spec"
DOMAIN = "mail.rebuild.test"
REBUILD = [sys.executable, "-m", "rebuild"]


# ---------------------------------------------------------------- the source


def sendmail_source(cache: Path | None = None) -> Path:
    """sendmail's upstream tarball (the version the spec names), verified against Debian's .dsc."""
    cache = (cache or cache_root()) / "sendmail-source"
    version = re.search(r"^Version:\s*(\S+)", SPEC.read_text(), re.M).group(1)
    tarball = cache / f"sendmail_{version}.orig.tar.gz"
    if tarball.is_file() and (cache / ".verified").exists():
        return tarball
    apt = cache / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "etc/parts"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "etc" / "sources.list").write_text(
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n"
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security"
        " bookworm-security main\n")
    (apt / "status").touch()
    conf = apt / "apt.conf"
    conf.write_text(f'Dir::State "{apt}";\nDir::State::Lists "{apt}/lists";\nDir::State::status "{apt}/status";\n'
                    f'Dir::Cache "{apt}/cache";\nDir::Etc::SourceList "{apt}/etc/sources.list";\n'
                    f'Dir::Etc::SourceParts "{apt}/etc/parts";\nDebug::NoLocking "true";\n')
    env = {**os.environ, "APT_CONFIG": str(conf)}
    update = subprocess.run(["apt-get", "-q", "update"], env=env, capture_output=True, text=True)
    if update.returncode != 0 or "Err:" in update.stdout:
        raise Unavailable(f"Debian's source archive is not reachable: {update.stdout.strip()[-200:]}")
    got = subprocess.run(["apt-get", "-q", "source", "--download-only", "sendmail"], cwd=cache, env=env,
                         capture_output=True, text=True)
    if got.returncode != 0 or not tarball.is_file():
        raise Unavailable(f"apt-get source sendmail did not give {tarball.name}: {(got.stdout + got.stderr)[-300:]}")
    (dsc,) = cache.glob("sendmail_*.dsc")
    sums = dsc.read_text().split("Checksums-Sha256:", 1)[1]
    expected = next(line.split()[0] for line in sums.splitlines() if line.strip().endswith(tarball.name))
    import hashlib

    actual = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if actual != expected:
        tarball.unlink()
        raise RuntimeError(f"{tarball.name}: sha256 {actual}, the .dsc says {expected}")
    (cache / ".verified").write_text(f"{expected}  {tarball.name}\n")
    return tarball


def make_srpm(image: str, out: Path, cache: Path | None = None) -> Path:
    """sendmail-VERSION-1.80.src.rpm made by the image's own rpm (4.0.4 reads Copyright:)."""
    from tests.i686tree import RPM404, make_srpm_in

    sources = out / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    shutil.copy(sendmail_source(cache), sources)
    spec = SPEC.read_text()
    if not RPM404.is_file():  # Debian's rpm 4.18 stands in: it refuses the 2003 tag
        spec = spec.replace("Copyright:", "License:")
    (sources / "sendmail.spec").write_text(spec)
    return make_srpm_in(image, sources / "sendmail.spec", out / "top")


# ---------------------------------------------------------------- certificates and configuration


def certificates(folder: Path, client_subject: str = "CN=relay-client.rebuild.test") -> dict[str, Path]:
    """A CA, a server certificate it signed, and a self-signed client certificate (not from that CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def cert(subject, issuer, public, signer, ca=False):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    def write(name, obj):
        path = folder / name
        if hasattr(obj, "private_bytes"):
            path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
            path.chmod(0o600)
        else:
            path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key, server_key, client_key = key(), key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rebuild test CA")])
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    client_name = x509.Name.from_rfc4514_string(client_subject)
    return {
        "ca": write("ca.pem", cert(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)),
        "server": write("server.pem", cert(server_name, ca_name, server_key.public_key(), ca_key)),
        "server_key": write("server.key", server_key),
        "client": write("client.pem", cert(client_name, client_name, client_key.public_key(), client_key)),
        "client_key": write("client.key", client_key),
    }


@dataclass(frozen=True)
class Config:
    mechanisms: str = "LOGIN PLAIN"
    trusted: str = "LOGIN PLAIN"
    auth_options: str = "A p"


def mc_text(config: Config) -> str:
    """A sendmail.mc as the 2003 article has it: certificate paths for STARTTLS, the two AUTH lists kept
    identical, the p flag so PLAIN and LOGIN are offered only inside TLS."""
    return textwrap.dedent(f"""\
        divert(-1)dnl
        include(`/usr/share/sendmail-cf/m4/cf.m4')dnl
        VERSIONID(`rebuild: the 2003 procedure')dnl
        OSTYPE(`linux')dnl
        define(`confDOMAIN_NAME', `{DOMAIN}')dnl
        define(`confHOSTS_FILE', `/etc/mail/hosts')dnl
        define(`confSERVICE_SWITCH_FILE', `/etc/mail/service.switch')dnl
        define(`ALIAS_FILE', `/etc/mail/aliases')dnl
        define(`confDONT_BLAME_SENDMAIL', `GroupReadableKeyFile,GroupWritableDirPathSafe,TrustStickyBit')dnl
        define(`confCACERT_PATH', `/etc/mail/certs')dnl
        define(`confCACERT', `/etc/mail/certs/ca.pem')dnl
        define(`confSERVER_CERT', `/etc/mail/certs/server.pem')dnl
        define(`confSERVER_KEY', `/etc/mail/certs/server.key')dnl
        define(`confAUTH_OPTIONS', `{config.auth_options}')dnl
        define(`confAUTH_MECHANISMS', `{config.mechanisms}')dnl
        TRUST_AUTH_MECH(`{config.trusted}')dnl
        FEATURE(`accept_unresolvable_domains')dnl
        FEATURE(`no_default_msa')dnl
        DAEMON_OPTIONS(`Family=inet, Name=MTA, Port=25, Addr=0.0.0.0')dnl
        MAILER(`local')dnl
        MAILER(`smtp')dnl
        """)


# ---------------------------------------------------------------- a running server


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


class Server:
    """A container of *image* with the built sendmail and sendmail-cf installed from *repo* by the image's
    own rpm, configured by *config*, started with -bD; probed from the container's network namespace."""

    def __init__(self, image: str, repo: Path, work: Path, config: Config, certs: dict[str, Path]) -> None:
        self.image, self.repo, self.work, self.config, self.certs = image, repo, work, config, certs
        self.name = f"rebuild-test-sendmail-{os.getpid()}-{time.monotonic_ns() % 100000}"

    def exec(self, *argv: str) -> subprocess.CompletedProcess:
        return run(["docker", "exec", self.name, "linux32", *argv])

    def __enter__(self) -> Server:
        etc = self.work / "etc-mail"
        (etc / "certs").mkdir(parents=True, exist_ok=True)
        for key in ("ca", "server", "server_key"):
            shutil.copy(self.certs[key], etc / "certs" / self.certs[key].name)
        (etc / "certs" / "server.key").chmod(0o600)
        (etc / "sendmail.mc").write_text(mc_text(self.config))
        (etc / "hosts").write_text(f"127.0.0.1 {DOMAIN} localhost\n127.0.0.2 probe-client.rebuild.test\n")
        (etc / "service.switch").write_text("hosts files\naliases files\n")
        (etc / "Sendmail.conf").write_text(f"pwcheck_method: auxprop\nmech_list: {self.config.mechanisms}\n")
        started = run(["docker", "run", "-d", "--name", self.name, "--network", "none", "--hostname", DOMAIN,
                       "--label", "org.rebuild.test=1", "-v", f"{self.repo}:/repo:ro", "-v", f"{etc}:/conf:ro",
                       self.image, "sleep", "600"])
        if started.returncode != 0:
            raise RuntimeError(started.stderr)
        try:
            self._install_and_start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _install_and_start(self) -> None:
        rpms = sorted(str(p.relative_to(self.repo)) for p in self.repo.rglob("sendmail*.rpm") if "SRPMS" not in str(p))
        self.installed = self.exec("rpm", "-Uvh", *[f"/repo/{r}" for r in rpms])
        if self.installed.returncode != 0:
            raise RuntimeError(f"rpm -Uvh failed: {self.installed.stdout}{self.installed.stderr}")
        script = ("cp -r /conf/certs /etc/mail/ && chmod 600 /etc/mail/certs/server.key && "
                  "cp /conf/sendmail.mc /conf/hosts /conf/service.switch /etc/mail/ && "
                  "mkdir -p /etc/sasl2 && cp /conf/Sendmail.conf /etc/sasl2/ && "
                  "cat /conf/hosts >> /etc/hosts && printf 'hosts: files\\n' > /etc/nsswitch.conf && "
                  "m4 /etc/mail/sendmail.mc > /etc/mail/sendmail.cf")
        made = self.exec("sh", "-c", script)
        if made.returncode != 0:
            raise RuntimeError(f"configuring sendmail failed: {made.stdout}{made.stderr}")
        run(["docker", "exec", "-d", self.name, "linux32", "/usr/sbin/sendmail", "-bD", "-C", "/etc/mail/sendmail.cf"])
        pid = run(["docker", "inspect", "-f", "{{.State.Pid}}", self.name]).stdout.strip()
        self.netns = f"/proc/{pid}/ns/net"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            banner = run(["nsenter", f"--net={self.netns}", sys.executable, "-c",
                          "import socket; s = socket.create_connection(('127.0.0.1', 25), timeout=2);"
                          " print(s.recv(200).decode())"])
            if banner.returncode == 0 and banner.stdout.startswith("220"):
                return
            time.sleep(0.3)
        log = self.exec("sh", "-c", "ls -la /var/spool/mqueue; tail /var/log/maillog 2>/dev/null")
        raise RuntimeError(f"sendmail did not answer on port 25: {banner.stderr[-300:]} {log.stdout}")

    def probe(self, *args: str) -> subprocess.CompletedProcess:
        """rebuild probe-smtp against the server, from its network namespace (no network leaves the host)."""
        return run(["nsenter", f"--net={self.netns}", *REBUILD, "probe-smtp", "127.0.0.1:25", *args], cwd=ROOT,
                   timeout=120)

    def __exit__(self, *exc) -> None:
        run(["docker", "rm", "-f", "-v", self.name])


# ---------------------------------------------------------------- the demo


def main(argv: list[str] | None = None) -> int:
    """`make demo-sendmail`: the whole procedure, printing the result folder, the probe and the audit."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    from tests.i686tree import build_tree

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        tree = build_tree(log=lambda m: print(m, file=sys.stderr))
        sendmail_source()
    except Unavailable as exc:
        print(f"demo-sendmail: {exc}", file=sys.stderr)
        return 3
    steps = [[*REBUILD, "image", "i686-test", "--mirror", str(tree / "os"), "--updates", str(tree / "updates")]]
    for argv in steps:
        proc = subprocess.run(argv, cwd=ROOT)
        if proc.returncode != 0:
            return proc.returncode
    image = run([*REBUILD, "-q", "image", "i686-test", "--mirror", str(tree / "os"), "--updates", str(tree / "updates")],
                cwd=ROOT).stdout.split()[1]
    srpm_dir = ROOT / "build" / "demo-sendmail" / "SRPMS"
    srpm = make_srpm(image, out / "srpm")
    srpm_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(srpm, srpm_dir / srpm.name)
    built = subprocess.run([*REBUILD, "build", "specs/examples/sendmail-starttls.yaml", "--out", str(out / "results"),
                            "--json"], cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(built.stderr)
    if built.returncode != 0:
        return built.returncode
    import json

    result = Path(json.loads(built.stdout)[0]["directory"])
    print(f"result folder: {result}")
    repo = out / "repo"
    subprocess.run([*REBUILD, "-q", "publish", str(result), "--repo", str(repo), "--adopt"], cwd=ROOT, check=True)
    certs = certificates(out / "certs")
    mc = out / "sendmail.mc"
    mc.write_text(mc_text(Config()))
    audit = run([*REBUILD, "audit-mc", str(mc)], cwd=ROOT)
    print(f"audit-mc verdict (exit {audit.returncode}):\n{audit.stdout}")
    with Server(runtime_image(result), repo, out / "server", Config(), certs) as server:
        probe = server.probe("--ca-file", str(certs["ca"]), "--relay-test", "probe@example.com", "victim@example.org",
                             "--source", "127.0.0.2")
    print(f"probe-smtp report (exit {probe.returncode}):\n{probe.stdout}{probe.stderr}")
    return 0


def runtime_image(result: Path, env: dict | None = None) -> str:
    """The build's root with what the built packages need at run time besides (the SASL PLAIN/LOGIN plugin):
    a layer on the build's layer, solved from the result's lock."""
    import json

    from rebuild.config.target import load_target
    from rebuild.log import Log
    from rebuild.roots.layers import build_layer
    from rebuild.roots.lock import RootLock
    from rebuild.settings import Settings
    from rebuild.systems.dockerengine import DockerEngine

    root = json.loads((result / "manifest.json").read_text())["root"]
    settings = Settings.from_env(env)
    engine = DockerEngine()
    try:
        layer = build_layer(load_target("i686-test", settings.home), root["image_id"], ["cyrus-sasl-plain", "m4"],
                            None, engine, Log(quiet=True), settings.cache,
                            base_lock=RootLock.from_json(json.dumps(root["lock"]), "manifest.json"))
    finally:
        engine.close()
    return layer.image_id


if __name__ == "__main__":
    sys.exit(main())
