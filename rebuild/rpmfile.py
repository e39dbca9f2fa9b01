"""Reading RPM files with librpm (the system's bindings, via the ``rpm`` shim)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import UsageError

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


def read_info(path: Path) -> RpmInfo:
    """NEVRA and type of the RPM at *path*; UsageError when it is not an RPM."""
    import rpm

    path = Path(path)
    try:
        with path.open("rb") as fh:
            lead = fh.read(96)
            if len(lead) < 96 or not lead.startswith(LEAD_MAGIC):
                raise UsageError(f"{path}: not an RPM file (no RPM lead magic ED AB EE DB)")
            os.lseek(fh.fileno(), 0, os.SEEK_SET)  # librpm reads the fd, not Python's buffer
            try:
                hdr = _ts().hdrFromFdno(fh.fileno())
            except rpm.error as exc:
                raise UsageError(f"{path}: unreadable RPM header: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    is_source = bool(hdr.isSource())
    epoch = hdr[rpm.RPMTAG_EPOCH]
    return RpmInfo(
        name=_text(hdr[rpm.RPMTAG_NAME]),
        epoch=int(epoch) if epoch is not None else None,
        version=_text(hdr[rpm.RPMTAG_VERSION]),
        release=_text(hdr[rpm.RPMTAG_RELEASE]),
        arch="src" if is_source else _text(hdr[rpm.RPMTAG_ARCH]),
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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
