"""Reading RPM files: headers with ``rpm -qp``, payloads with librpm's Python bindings (via the ``rpm`` shim)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import EnvironmentProblem, UsageError

LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ts():
    import rpm

    ts = rpm.TransactionSet()
    # Reading only: digests and signatures are verified separately (fetch, publish).
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    return ts


# Tab-separated: no tag read here can hold a tab. SOURCERPM is "(none)" exactly when the package is a source RPM.
_QUERY = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"


def read_info(path: Path) -> RpmInfo:
    """NEVRA and type of the RPM at *path*; UsageError when it is not an RPM.

    The header is read by ``rpm -qp`` (librpm, 4 ms) rather than the Python bindings, whose
    venv shim spends 0.1 s of CPU finding the system interpreter on first import. Digests and
    signatures are verified elsewhere (fetch, publish)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            lead = fh.read(96)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    if len(lead) < 96 or not lead.startswith(LEAD_MAGIC):
        raise UsageError(f"{path}: not an RPM file (no RPM lead magic ED AB EE DB)")
    try:
        proc = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", _QUERY, "--", str(path)],
                              capture_output=True, text=True, errors="replace", env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        raise EnvironmentProblem("rpm is not installed (Debian: apt-get install rpm)") from None
    fields = proc.stdout.rstrip("\n").split("\t")
    if proc.returncode != 0 or len(fields) != 6 or "\n" in proc.stdout.rstrip("\n"):
        reason = " ".join(proc.stderr.split()).removeprefix("error: ") or f"rpm -qp exit {proc.returncode}"
        raise UsageError(f"{path}: unreadable RPM header: {reason}")
    name, epoch, version, release, arch, source_rpm = fields
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
