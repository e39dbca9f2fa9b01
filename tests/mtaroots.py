"""Debian's postfix and exim4 on 127.0.0.1 for tests, each in its own root: the two packages conflict with
each other and with the host's sendmail (each provides mail-transport-agent), so each gets a debootstrap
root (cached as a tarball under ~/.cache/rebuild-tests/mta-roots/), imported as a rebuild-test/ image and
run as a container on the host's network, listening on a loopback port only. A secure and an insecure
configuration each: relay closed or open (mynetworks / relay_from_hosts), AUTH only inside TLS or before
it, VRFY off or on, TLS 1.2+ with a 2048-bit SHA-256 certificate or TLS 1.0 only with a 1024-bit SHA-1 one.

Needs root, debootstrap, Debian's mirror (the first time) and a Docker engine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from tests.legacysmtp import make_certificate
from tests.mta import free_port

MIRROR = os.environ.get("REBUILD_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("REBUILD_TEST_CACHE", Path.home() / ".cache" / "rebuild-tests")) / "mta-roots"
PACKAGES = {
    "postfix": ["postfix", "libsasl2-modules", "sasl2-bin", "openssl", "ca-certificates"],
    "exim4": ["exim4-daemon-heavy", "openssl", "ca-certificates"],
}
DOMAIN = "mail.rebuild.test"
USER, PASSWORD = "probe", "probe-secret"


class Unavailable(Exception):
    """The MTA's root cannot be made or run here (the reason says why)."""


def image(name: str) -> str:
    """The rebuild-test/mta-NAME image, imported from the cached root (made with debootstrap first)."""
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise Unavailable("an MTA root needs root and debootstrap")
    packages = PACKAGES[name]
    key = hashlib.sha256(" ".join(["bookworm", *packages]).encode()).hexdigest()[:12]
    tarball = CACHE / f"{name}-{key}.tar"
    tag = f"rebuild-test/mta-{name}:{key}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"mta-{name}-", dir=CACHE))
        try:
            made = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", "bookworm",
                                   str(root), MIRROR], capture_output=True, text=True, timeout=1800)
            if made.returncode != 0:
                raise Unavailable(f"debootstrap of the {name} root failed: {made.stdout[-600:]}{made.stderr[-600:]}")
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    with tarball.open("rb") as fh:
        subprocess.run(["docker", "import", "-", tag], stdin=fh, check=True, capture_output=True)
    return tag


class MTA:
    """One MTA container on 127.0.0.1:<port>; *secure* picks the configuration."""

    name = ""

    def __init__(self, folder: Path, secure: bool) -> None:
        self.folder = folder
        self.secure = secure
        self.port = free_port()
        self.container = f"rebuild-test-{self.name}-{uuid.uuid4().hex[:8]}"

    def files(self) -> dict[str, str]:
        raise NotImplementedError

    def command(self) -> str:
        raise NotImplementedError

    def __enter__(self) -> MTA:
        tag = image(self.name)
        cfg = self.folder / "cfg"
        cfg.mkdir(parents=True, exist_ok=True)
        cert, key = make_certificate(cfg, 2048 if self.secure else 1024, sha1=not self.secure, name=DOMAIN)
        shutil.copy(key, cfg / "key.pem")
        shutil.copy(cert, cfg / "cert.pem")
        for rel, text in self.files().items():
            (cfg / rel).parent.mkdir(parents=True, exist_ok=True)
            (cfg / rel).write_text(text)
        for path in cfg.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (cfg / "key.pem").chmod(0o644)  # read by the MTA's own user in the container (a throwaway test key)
        started = subprocess.run(["docker", "run", "-d", "--name", self.container, "--network", "host",
                                  "--label", "org.rebuild-test=1", "-v", f"{cfg}:/cfg:ro", tag, "sh", "-c",
                                  self.command()], capture_output=True, text=True)
        if started.returncode != 0:
            raise Unavailable(f"{self.name} did not start: {started.stderr.strip()}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", self.container],
                                   capture_output=True, text=True).stdout.strip()
            if state != "true":
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                    if conn.recv(100).startswith(b"220"):
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        logs = subprocess.run(["docker", "logs", self.container], capture_output=True, text=True)
        self.__exit__()
        raise Unavailable(f"{self.name} did not answer on 127.0.0.1:{self.port}: {(logs.stdout + logs.stderr)[-800:]}")

    def logs(self) -> str:
        out = subprocess.run(["docker", "logs", self.container], capture_output=True, text=True)
        return out.stdout + out.stderr

    def __exit__(self, *exc) -> None:
        subprocess.run(["docker", "rm", "-f", self.container], capture_output=True)


class Postfix(MTA):
    name = "postfix"

    def files(self) -> dict[str, str]:
        weak = "" if self.secure else textwrap.dedent("""\
            smtpd_tls_protocols = >=TLSv1, <=TLSv1
            smtpd_tls_mandatory_protocols = >=TLSv1, <=TLSv1
            smtpd_tls_ciphers = low
            smtpd_tls_mandatory_ciphers = low
            tls_low_cipherlist = AES128-SHA:@SECLEVEL=0
            """)
        main = textwrap.dedent(f"""\
            compatibility_level = 3.6
            myhostname = {DOMAIN}
            mydomain = rebuild.test
            mydestination = {DOMAIN}
            inet_protocols = ipv4
            inet_interfaces = 127.0.0.1
            mynetworks = {'127.0.0.1/32' if self.secure else '0.0.0.0/0'}
            smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
            alias_maps =
            alias_database =
            maillog_file = /dev/stdout
            smtpd_tls_cert_file = /cfg/cert.pem
            smtpd_tls_key_file = /cfg/key.pem
            smtpd_tls_security_level = may
            smtpd_sasl_auth_enable = yes
            smtpd_sasl_type = cyrus
            smtpd_sasl_path = smtpd
            cyrus_sasl_config_path = /etc/postfix/sasl
            smtpd_tls_auth_only = {'yes' if self.secure else 'no'}
            disable_vrfy_command = {'yes' if self.secure else 'no'}
            """) + weak
        return {"main.cf": main, "smtpd.conf": "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"}

    def command(self) -> str:
        # Debian's master.cf with its port 25 service replaced by ours, unchrooted (the certificate and the
        # SASL database stay where they are)
        return (f"cp /cfg/main.cf /etc/postfix/main.cf && mkdir -p /etc/postfix/sasl && cp /cfg/smtpd.conf"
                f" /etc/postfix/sasl/smtpd.conf && sed -i 's/^smtp      inet.*/{self.port} inet n - n - - smtpd/'"
                f" /etc/postfix/master.cf && echo {PASSWORD} | saslpasswd2 -p -c -u {DOMAIN} {USER}"
                " && chgrp postfix /etc/sasldb2 && chmod 640 /etc/sasldb2 && exec postfix start-fg")


class Exim(MTA):
    name = "exim4"

    def files(self) -> dict[str, str]:
        tls = ("" if self.secure else
               'tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.0:-AES-256-GCM:-AES-128-GCM:+SHA1:%COMPAT\n')
        conf = textwrap.dedent(f"""\
            primary_hostname = {DOMAIN}
            domainlist local_domains = {DOMAIN}
            hostlist relay_from_hosts = {'127.0.0.1' if self.secure else '*'}
            daemon_smtp_ports = {self.port}
            local_interfaces = 127.0.0.1
            tls_advertise_hosts = *
            tls_certificate = /cfg/cert.pem
            tls_privatekey = /cfg/key.pem
            acl_smtp_rcpt = acl_check_rcpt
            acl_smtp_vrfy = acl_check_vrfy
            spool_directory = /var/spool/exim4
            """) + tls + textwrap.dedent(f"""\

            begin acl
            acl_check_rcpt:
              accept hosts = +relay_from_hosts
              accept authenticated = *
              require domains = +local_domains
              require verify = recipient
              accept
            acl_check_vrfy:
              {'deny' if self.secure else 'accept'}

            begin routers
            local:
              driver = accept
              domains = +local_domains
              local_parts = {USER} : postmaster
              transport = discard

            begin transports
            discard:
              driver = appendfile
              file = /dev/null
              user = Debian-exim

            begin authenticators
            plain:
              driver = plaintext
              public_name = PLAIN
              server_prompts = :
              server_condition = ${{if and{{{{eq{{$auth2}}{{{USER}}}}}{{eq{{$auth3}}{{{PASSWORD}}}}}}}}}
              server_advertise_condition = {'${if def:tls_in_cipher}' if self.secure else 'true'}
            """)
        return {"exim4.conf": conf}

    def command(self) -> str:
        return "cp /cfg/exim4.conf /etc/exim4/exim4.conf && exec exim4 -bdf -q30m"
