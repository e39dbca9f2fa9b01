"""RPM files: headers read with ``rpm -qp``, payloads with librpm's Python bindings (through the
``rpm`` shim), and the checks a downloaded package must pass (lead, own digests, signature).

The checks raise ``BadPackage`` (exit 1): the file is not what it claims to be.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rebuild import hostcmd
from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.files import SAFE_NAME

LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"


class BadPackage(CheckFailed):
    """A file that should be a (certain) RPM is not, or its digests or signature do not verify."""


@dataclass(frozen=True)
class RpmInfo:
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    is_source: bool

    @property
    def evr(self) -> str:
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "epoch": self.epoch,
            "version": self.version,
            "release": self.release,
            "arch": self.arch,
            "nevra": self.nevra,
        }


def _ts():
    import rpm

    ts = rpm.TransactionSet()
    # Reading only: digests and signatures are verified separately (fetch, publish).
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    return ts


# Tab-separated: no tag read here can hold a tab. SOURCERPM is "(none)" exactly when the package is a source RPM.
_QUERY = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"


def read_summary(path: Path) -> str:
    """The package's one-line Summary, as its header says (shown escaped wherever it is shown)."""
    proc = hostcmd.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{SUMMARY}", "--", str(path)],
                       "reading an RPM's summary", check=False)
    return " ".join(proc.stdout.split())[:300] if proc.returncode == 0 else ""


def source_buildrequires(path: Path, keep_rpmlib: bool = False) -> list[str]:
    """A source package's build requirements as its header records them (rpm 4.0.x records ``BuildPrereq:``
    there too), one ``NAME [OP VERSION]`` each, ``rpmlib(...)`` left out; UsageError when unreadable."""
    proc = hostcmd.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf",
                        "[%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\\n]", "--", str(path)],
                       "reading an SRPM's BuildRequires", check=False)
    if proc.returncode != 0:
        reason = " ".join(proc.stderr.split()).removeprefix("error: ") or f"rpm -qp exit {proc.returncode}"
        raise UsageError(f"{path}: unreadable RPM header: {reason}")
    wanted = (" ".join(line.split()) for line in proc.stdout.splitlines())
    return list(dict.fromkeys(w for w in wanted if w and (keep_rpmlib or not w.startswith("rpmlib("))))


def requires_of(path: Path) -> list[str]:
    """The capability names an RPM requires (a source package's: its BuildRequires), as its header lists them."""
    return list(dict.fromkeys(br.split()[0] for br in source_buildrequires(path, keep_rpmlib=True)))


def read_info(path: Path) -> RpmInfo:
    """NEVRA and type of the RPM at *path*; UsageError when it is not an RPM.

    The header is read by ``rpm -qp`` (librpm, 4 ms) rather than the Python bindings, whose
    venv shim spends 0.1 s of CPU finding the system interpreter on first import. Digests and
    signatures are verified elsewhere. A field that could not name a file safely (a separator,
    a control character) makes the header unreadable for rebuild."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            lead = fh.read(96)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    if len(lead) < 96 or not lead.startswith(LEAD_MAGIC):
        raise UsageError(f"{path}: not an RPM file (no RPM lead magic ED AB EE DB)")
    proc = hostcmd.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", _QUERY, "--", str(path)],
                       "reading an RPM header", check=False)
    fields = proc.stdout.rstrip("\n").split("\t")
    if proc.returncode != 0 or len(fields) != 6 or "\n" in proc.stdout.rstrip("\n"):
        reason = " ".join(proc.stderr.split()).removeprefix("error: ") or f"rpm -qp exit {proc.returncode}"
        raise UsageError(f"{path}: unreadable RPM header: {reason}")
    name, epoch, version, release, arch, source_rpm = fields
    for value in (name, version, release, arch):
        if not SAFE_NAME.match(value):
            raise UsageError(f"{path}: the header holds {value!r}, which rebuild will not use in a file name")
    is_source = source_rpm == "(none)"
    return RpmInfo(
        name=name,
        epoch=int(epoch) if epoch.isdigit() else None,
        version=version,
        release=release,
        arch="src" if is_source else arch,
        is_source=is_source,
    )


def payload(path: Path) -> dict[str, bytes]:
    """The regular files of an RPM's payload, by absolute path (for tests and checks)."""
    import rpm

    out: dict[str, bytes] = {}
    fd = rpm.fd.open(str(path))
    try:
        hdr = _ts().hdrFromFdno(fd)
        files = rpm.files(hdr)
        archive = files.archive(rpm.fd(fd, flags=hdr[rpm.RPMTAG_PAYLOADCOMPRESSOR]))
        for entry in archive:
            if (entry.mode & 0o170000) == 0o100000 and archive.hascontent():
                out[entry.name] = archive.read()
    finally:
        fd.close()
    return out


# ---------------------------------------------------------------- checks of a downloaded package


def check_lead(path: Path, where: str, source: bool | None = True) -> None:
    """The file starts like an RPM (lead magic ED AB EE DB) of the right type (1 source, 0 binary)."""
    with Path(path).open("rb") as fh:
        lead = fh.read(8)
    if not lead.startswith(LEAD_MAGIC):
        hint = " (looks like an HTML page)" if lead.lstrip().lower().startswith((b"<!do", b"<htm", b"<hea")) else ""
        raise BadPackage(f"{where}: not an RPM file{hint}")
    kind = int.from_bytes(lead[6:8], "big") if len(lead) >= 8 else -1
    if source is True and kind != 1:
        raise BadPackage(f"{where}: a binary RPM, not a source RPM")
    if source is False and kind != 0:
        raise BadPackage(f"{where}: a source RPM, not a binary RPM")


def check_header(path: Path, expected_nvr: str | None, where: str) -> RpmInfo:
    """An RPM whose header names *expected_nvr* (when given)."""
    try:
        info = read_info(path)
    except UsageError as exc:
        raise BadPackage(f"{where}: {exc.message}") from None
    if expected_nvr and info.nvr != expected_nvr:
        raise BadPackage(f"{where}: the header says {info.nvr}, expected {expected_nvr}")
    return info


def check_digests(path: Path, where: str) -> None:
    """The package's own header and payload digests (MD5/SHA1 in 2003-era RPMs), with rpmkeys."""
    proc = hostcmd.run(["rpmkeys", "--checksig", "--nosignature", str(path)], "checking a package's digests",
                       check=False)
    if proc.returncode != 0 or "digests OK" not in proc.stdout:
        raise BadPackage(f"{where}: its own digests do not verify: {' '.join((proc.stdout + proc.stderr).split())[:200]}")


def check_signature(path: Path, keys: tuple[Path, ...], where: str) -> None:
    """Digests and signature with rpmkeys against only *keys*, in a throwaway rpmdb."""
    if not shutil.which("rpmkeys"):
        raise EnvironmentProblem("rpmkeys is not installed (Debian: apt-get install rpm)")
    with tempfile.TemporaryDirectory(prefix="rebuild-keys-") as db:
        for key in keys:
            proc = hostcmd.run(["rpmkeys", "--dbpath", db, "--import", str(key)], "importing a key", check=False)
            if proc.returncode != 0:
                raise UsageError(f"{key}: cannot import the key: {proc.stderr.strip() or proc.stdout.strip()}")
        proc = hostcmd.run(["rpmkeys", "--dbpath", db, "--checksig", "-v", str(path)], "checking a signature",
                           check=False)
    out = (proc.stdout + proc.stderr).strip()
    signed_ok = re.search(r"(RSA|DSA|EdDSA|ECDSA|V\d) .*signature.*: OK", out, re.I)
    if proc.returncode != 0 or not signed_ok:
        problem = "no signature" if "signature" not in out.lower() else "signature not OK with the given keys"
        raise BadPackage(f"{where}: {problem}: {' '.join(out.split())[:300]}")
