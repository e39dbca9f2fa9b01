"""Two packages compared, in the spirit of rpmdiff: files added, removed and changed (content digest, size,
mode, owner, link target), Requires/Provides/Conflicts/Obsoletes added and removed, and for ELF files the
NEEDED sonames (read with pyelftools). ``rebuild diff A B`` on two RPMs, or on two folders whose RPMs are
matched by name and arch; the reproducibility check uses the same comparison.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rebuild.errors import UsageError
from rebuild.log import printable
from rebuild.systems.rpmfile import read_info

DEP_KINDS = ("requires", "provides", "conflicts", "obsoletes")
# header tags that say how a build went rather than what it made; compared, and reported apart
BUILD_TAGS = ("buildtime", "buildhost")


@dataclass(frozen=True)
class FileEntry:
    path: str
    digest: str    # sha256 of the content ("" for folders and links)
    size: int
    mode: str      # octal, with the file type
    owner: str     # user:group
    link: str      # the link target ("" when not a link)
    needed: tuple[str, ...] = ()  # an ELF file's NEEDED sonames


@dataclass(frozen=True)
class Package:
    path: Path
    nevra: str
    deps: dict           # kind -> sorted list of "name op version"
    header: dict         # tag -> value (what the comparison reads besides files and deps)
    files: dict          # path -> FileEntry


@dataclass
class PackageDiff:
    a: str
    b: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)      # {"path", "what": {field: [a, b]}}
    deps: dict = field(default_factory=dict)                # kind -> {"added": [...], "removed": [...]}
    sonames: list[dict] = field(default_factory=list)       # {"path", "added", "removed"}
    header: dict = field(default_factory=dict)              # tag -> [a, b]

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed or self.deps or self.sonames or self.header)

    def only_build_tags(self) -> bool:
        """Whether the packages differ only in when and where they were built."""
        return not (self.added or self.removed or self.changed or self.deps or self.sonames) and \
            set(self.header) <= set(BUILD_TAGS)


def _needed(data: bytes) -> tuple[str, ...]:
    if not data.startswith(b"\x7fELF"):
        return ()
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        return tuple(sorted(tag.needed for section in elf.iter_sections() if isinstance(section, DynamicSection)
                            for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"))
    except (ELFError, ValueError, KeyError, IndexError):
        return ()


def read_package(path: Path) -> Package:
    """An RPM's header and payload as the comparison sees them (librpm's bindings; digests not checked)."""
    import rpm

    info = read_info(path)
    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    fd = rpm.fd.open(str(path))
    try:
        hdr = ts.hdrFromFdno(fd)
        deps = {kind: sorted(str(d.DNEVR())[2:] for d in rpm.ds(hdr, kind)) for kind in DEP_KINDS}
        header = {tag: str(hdr[tag]) for tag in ("summary", "license", "group", "url", "sourcerpm", *BUILD_TAGS)}
        files: dict[str, FileEntry] = {}
        archive = rpm.files(hdr).archive(rpm.fd(fd, flags=hdr[rpm.RPMTAG_PAYLOADCOMPRESSOR]))
        for entry in archive:
            data = archive.read() if stat.S_ISREG(entry.mode) and archive.hascontent() else b""
            files[entry.name] = FileEntry(
                path=entry.name, digest=hashlib.sha256(data).hexdigest() if stat.S_ISREG(entry.mode) else "",
                size=entry.size if stat.S_ISREG(entry.mode) else 0, mode=oct(entry.mode),
                owner=f"{entry.user}:{entry.group}", link=entry.linkto if stat.S_ISLNK(entry.mode) else "",
                needed=_needed(data))
    except rpm.error as exc:
        raise UsageError(f"{path}: unreadable RPM ({exc})") from None
    finally:
        fd.close()
    return Package(Path(path), info.nevra, deps, header, files)


def compare(a: Package, b: Package) -> PackageDiff:
    diff = PackageDiff(a.nevra, b.nevra)
    diff.added = sorted(set(b.files) - set(a.files))
    diff.removed = sorted(set(a.files) - set(b.files))
    for path in sorted(set(a.files) & set(b.files)):
        fa, fb = a.files[path], b.files[path]
        what = {f: [getattr(fa, f), getattr(fb, f)] for f in ("digest", "size", "mode", "owner", "link")
                if getattr(fa, f) != getattr(fb, f)}
        if what:
            diff.changed.append({"path": path, "what": what})
        if fa.needed != fb.needed:
            diff.sonames.append({"path": path, "added": sorted(set(fb.needed) - set(fa.needed)),
                                 "removed": sorted(set(fa.needed) - set(fb.needed))})
    for kind in DEP_KINDS:
        added = sorted(set(b.deps[kind]) - set(a.deps[kind]))
        removed = sorted(set(a.deps[kind]) - set(b.deps[kind]))
        if added or removed:
            diff.deps[kind] = {"added": added, "removed": removed}
    diff.header = {tag: [a.header[tag], b.header[tag]] for tag in a.header if a.header[tag] != b.header[tag]}
    return diff


def pair(a: Path, b: Path) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """RPMs to compare: the two given, or those of two folders matched by name and arch; and what only one
    side has."""
    if a.is_file() and b.is_file():
        return [(a, b)], [], []
    if not (a.is_dir() and b.is_dir()):
        raise UsageError(f"give two RPMs or two folders ({a}, {b})")

    def index(folder: Path) -> dict[str, Path]:
        found = {}
        for path in sorted(folder.rglob("*.rpm")):
            info = read_info(path)
            found[f"{info.name}.{info.arch}"] = path
        return found

    left, right = index(a), index(b)
    pairs = [(left[k], right[k]) for k in sorted(set(left) & set(right))]
    return pairs, sorted(set(left) - set(right)), sorted(set(right) - set(left))


def diff_json(diffs: list[PackageDiff], only_a: list[str], only_b: list[str]) -> str:
    return json.dumps({"packages": [asdict(d) for d in diffs], "only_in_a": only_a, "only_in_b": only_b}, indent=2)


def format_diff(diffs: list[PackageDiff], only_a: list[str], only_b: list[str]) -> str:
    lines = []
    for d in diffs:
        lines.append(f"{d.a} -> {d.b}: {'same' if d.same else 'differs'}")
        lines += [f"  + {p}" for p in d.added] + [f"  - {p}" for p in d.removed]
        for change in d.changed:
            parts = ", ".join(f"{k} {str(v[0])[:16] or '-'} -> {str(v[1])[:16] or '-'}" for k, v in change["what"].items())
            lines.append(f"  ~ {change['path']}: {parts}")
        for kind, change in d.deps.items():
            lines += [f"  + {kind}: {x}" for x in change["added"]] + [f"  - {kind}: {x}" for x in change["removed"]]
        for s in d.sonames:
            lines.append(f"  ~ {s['path']} NEEDED: " + " ".join([*(f"+{x}" for x in s["added"]),
                                                                  *(f"-{x}" for x in s["removed"])]))
        for tag, (va, vb) in d.header.items():
            lines.append(f"  ~ header {tag}: {va} -> {vb}")
    lines += [f"only in A: {n}" for n in only_a] + [f"only in B: {n}" for n in only_b]
    return "\n".join(printable(line) for line in lines)


def diff_rows(diffs: list[PackageDiff], only_a: list[str], only_b: list[str]) -> list[tuple[str, str, str, str, str]]:
    """What differs as table rows: package, kind, file or tag, A's value, B's value."""
    rows = []
    for d in diffs:
        package = d.b.rsplit(".", 1)[0]
        rows += [(package, "file added", p, "-", "present") for p in d.added]
        rows += [(package, "file removed", p, "present", "-") for p in d.removed]
        for change in d.changed:
            for what, (va, vb) in change["what"].items():
                rows.append((package, f"file {what}", change["path"], _short(va), _short(vb)))
        for kind, change in d.deps.items():
            rows += [(package, kind, x, "-", "present") for x in change["added"]]
            rows += [(package, kind, x, "present", "-") for x in change["removed"]]
        for s in d.sonames:
            rows.append((package, "NEEDED", s["path"], " ".join(s["removed"]) or "-", " ".join(s["added"]) or "-"))
        for tag, (va, vb) in d.header.items():
            rows.append((package, "header", tag, _short(va), _short(vb)))
    rows += [(n, "package", "only in A", "present", "-") for n in only_a]
    rows += [(n, "package", "only in B", "-", "present") for n in only_b]
    return rows


def _short(value) -> str:
    text = str(value) if value not in ("", None) else "-"
    return text if len(text) <= 24 else text[:12] + "…" + text[-8:]
