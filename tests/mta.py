"""A real sendmail on 127.0.0.1 for tests: self-signed certificate, SASL users in a sasldb,
in a private mount namespace (bind mounts over /etc/hosts and /etc/sasl2), one config per variant.

Needs root, Debian's sendmail-bin, sendmail-cf, m4, sasl2-bin and openssl (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

CF_M4 = "/usr/share/sendmail/cf/m4/cf.m4"
DOMAIN = "mail.rebuild.test"


def available() -> str | None:
    """None when a test MTA can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (private mount namespace)"
    for tool in ("sendmail", "m4", "openssl", "saslpasswd2", "unshare"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed"
    if not Path(CF_M4).exists():
        return "sendmail-cf is not installed"
    return None


@dataclass
class Variant:
    starttls: bool = True
    auth_options: str = "A p"
    mechanisms: str = "PLAIN LOGIN"
    trusted: str = "PLAIN LOGIN"
    promiscuous: bool = False
    accept_unresolvable: bool = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mc_text(folder: Path, port: int, v: Variant) -> str:
    lines = [
        "divert(-1)dnl",
        f"include(`{CF_M4}')dnl",
        "OSTYPE(`debian')dnl",
        "FEATURE(`no_default_msa')dnl",  # no submission port: only the test port is bound
        "define(`confDONT_BLAME_SENDMAIL', `GroupReadableKeyFile,GroupReadableSASLDBFile,GroupWritableDirPathSafe,TrustStickyBit')dnl",
        f"define(`confDOMAIN_NAME', `{DOMAIN}')dnl",
        f"define(`QUEUE_DIR', `{folder}/mqueue')dnl",
        f"define(`ALIAS_FILE', `{folder}/aliases')dnl",
        f"define(`confSERVICE_SWITCH_FILE', `{folder}/service.switch')dnl",
        f"define(`confHOSTS_FILE', `{folder}/hosts')dnl",
        f"define(`confPID_FILE', `{folder}/sendmail.pid')dnl",
        f"define(`confAUTH_OPTIONS', `{v.auth_options}')dnl",
        f"define(`confAUTH_MECHANISMS', `{v.mechanisms}')dnl",
        f"TRUST_AUTH_MECH(`{v.trusted}')dnl",
    ]
    if v.starttls:
        lines += [
            f"define(`confCACERT_PATH', `{folder}/certs')dnl",
            f"define(`confCACERT', `{folder}/certs/ca.pem')dnl",
            f"define(`confSERVER_CERT', `{folder}/certs/server.pem')dnl",
            f"define(`confSERVER_KEY', `{folder}/certs/server.key')dnl",
        ]
    if v.accept_unresolvable:
        lines.append("FEATURE(`accept_unresolvable_domains')dnl")
    if v.promiscuous:
        lines.append("FEATURE(`promiscuous_relay')dnl")
    lines += [f"DAEMON_OPTIONS(`Family=inet, Name=MTA-test, Port={port}, Addr=127.0.0.1')dnl",
              "MAILER(`local')dnl", "MAILER(`smtp')dnl"]
    return "\n".join(lines) + "\n"


class Sendmail:
    def __init__(self, folder: Path, variant: Variant) -> None:
        self.folder, self.variant = folder, variant
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def mc(self) -> Path:
        return self.folder / "test.mc"

    @property
    def ca(self) -> Path:
        return self.folder / "certs" / "ca.pem"

    def _prepare(self) -> None:
        f = self.folder
        for sub in ("mqueue", "certs", "sasl"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        (f / "mqueue").chmod(0o700)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", f"/CN={DOMAIN}",
                        "-keyout", str(f / "certs/server.key"), "-out", str(f / "certs/server.pem")],
                       check=True, capture_output=True)
        (f / "certs/server.key").chmod(0o600)
        shutil.copy(f / "certs/server.pem", self.ca)
        subprocess.run(["saslpasswd2", "-c", "-p", "-f", str(f / "sasl/sasldb2"), "-u", DOMAIN, "alice"],
                       input=b"secret\n", check=True)
        (f / "sasl/Sendmail.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {f}/sasl/sasldb2\nmech_list: {self.variant.mechanisms}\n")
        (f / "service.switch").write_text("hosts files\naliases files\n")
        # the FQDN first on its line: without it sendmail sleeps 60 s at every start
        (f / "hosts").write_text(f"127.0.0.1 {DOMAIN} localhost\n")
        (f / "aliases").write_text("")
        self.mc.write_text(mc_text(f, self.port, self.variant))
        with open(f / "test.cf", "w") as cf:
            subprocess.run(["m4", str(self.mc)], stdout=cf, check=True)
        (f / "run.sh").write_text(textwrap.dedent(f"""\
            #!/bin/sh
            set -e
            mount --bind {f}/hosts /etc/hosts
            mkdir -p /etc/sasl2
            mount --bind {f}/sasl /etc/sasl2
            exec /usr/sbin/sendmail -C {f}/test.cf -bD
            """))

    def __enter__(self) -> Sendmail:
        self._prepare()
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", str(self.folder / "run.sh")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.recv(100)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"sendmail did not start on port {self.port}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def protocols_by_testssl(port: int, folder: Path) -> dict[str, tuple[bool, str]]:
    """What Debian's testssl.sh says 127.0.0.1:*port* (SMTP with STARTTLS) offers: TLS version -> (offered,
    testssl's own words), for the probe's ``tls_protocols`` to be held to."""
    import json

    out = folder / "testssl.json"
    subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "-t", "smtp", "--protocols",
                    "--jsonfile", str(out), f"127.0.0.1:{port}"], capture_output=True, timeout=300)
    theirs = {item["id"]: item["finding"] for item in json.loads(out.read_text())}
    found = {}
    for version, key in (("TLSv1", "TLS1"), ("TLSv1.1", "TLS1_1"), ("TLSv1.2", "TLS1_2"), ("TLSv1.3", "TLS1_3")):
        words = theirs[key]
        found[version] = (not words.lower().startswith(("not offered", f"{version.lower()} is not offered",
                                                       "tlsv1.1 is not offered")), words)
    return found
