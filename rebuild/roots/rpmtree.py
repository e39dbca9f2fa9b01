"""Build roots from an RPM tree (Red Hat's ``RedHat/RPMS`` layout, or any folder of RPMs).

``list_tree`` reads a local folder or an HTTP directory index; ``resolve`` picks, for
each wanted name, the newest package by rpm's version order across the release tree
and its updates. Payloads are written by ``rebuild.roots.unpack``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

from rebuild.errors import ConfigError, EnvironmentProblem, UsageError
from rebuild.systems.evr import EVR, compare_evr
from rebuild.systems.urls import local_path, redact

_FILENAME = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.]+)\.rpm$")
ARCHES = {
    "i686": ["i686", "i586", "i486", "i386", "noarch"],
    "i386": ["i386", "noarch"],
    "x86_64": ["x86_64", "noarch"],
    "aarch64": ["aarch64", "noarch"],
}


@dataclass(frozen=True)
class TreePackage:
    name: str
    version: str
    release: str
    arch: str
    filename: str
    url: str
    origin: str  # "os" or "updates"
    sha256: str | None = None

    @property
    def evr(self) -> EVR:
        return EVR(None, self.version, self.release)


def read_package_list(path: Path) -> list[str]:
    """Package names, one per line; blank lines and # comments ignored."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the package list: {exc.strerror}") from None
    names = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", line):
            raise ConfigError(f"{path}:{number}: {line!r} is not a package name")
        names.append(line)
    return names


def _tree_root(location: str) -> str:
    """The folder holding the RPMs: LOCATION/RedHat/RPMS when it has the archive layout, else LOCATION."""
    base = location if location.endswith("/") else location + "/"
    local = local_path(base)
    if local is not None:
        return str(local / "RedHat" / "RPMS") + "/" if (local / "RedHat" / "RPMS").is_dir() else str(local) + "/"
    import requests

    try:
        probe = requests.get(urljoin(base, "RedHat/RPMS/"), timeout=30)
    except requests.RequestException as exc:
        raise EnvironmentProblem(f"{redact(base)}: cannot list the tree: {type(exc).__name__}") from None
    return urljoin(base, "RedHat/RPMS/") if probe.status_code == 200 else base


def list_tree(location: str, origin: str) -> list[TreePackage]:
    """Every RPM the tree at *location* offers (with sha256 from its SHA256SUMS when it has one)."""
    root = _tree_root(location)
    local = local_path(root)
    if local is not None:
        if not local.is_dir():
            raise UsageError(f"{location}: no such folder")
        names = sorted(p.name for p in local.iterdir() if p.name.endswith(".rpm"))
        sums_text = (local / "SHA256SUMS").read_text() if (local / "SHA256SUMS").is_file() else ""
        url_of = lambda n: (local / n).as_uri()  # noqa: E731
    else:
        import requests

        try:
            index = requests.get(root, timeout=30)
        except requests.RequestException as exc:
            raise EnvironmentProblem(f"{redact(root)}: cannot list the tree: {type(exc).__name__}") from None
        if index.status_code != 200:
            raise EnvironmentProblem(f"{redact(root)}: HTTP {index.status_code} listing the tree")
        names = sorted({Path(urlparse(h).path).name for h in re.findall(r'href="([^"]+\.rpm)"', index.text)})
        sums = requests.get(urljoin(root, "SHA256SUMS"), timeout=30)
        sums_text = sums.text if sums.status_code == 200 else ""
        url_of = lambda n: urljoin(root, n)  # noqa: E731
    sums = {}
    for line in sums_text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1].lstrip("*").split("/")[-1]] = parts[0]
    packages = []
    for name in names:
        m = _FILENAME.match(name)
        if m and m.group("arch") != "src":
            packages.append(TreePackage(m["name"], m["version"], m["release"], m["arch"], name, url_of(name), origin,
                                        sums.get(name)))
    if not packages:
        raise UsageError(f"{location}: no RPMs found (expected RedHat/RPMS/*.rpm or *.rpm)")
    return packages


def resolve(wanted: list[str], trees: list[list[TreePackage]], arch: str) -> list[TreePackage]:
    """The newest package of each wanted name (updates win when newer); error naming what is missing."""
    allowed = ARCHES.get(arch, [arch, "noarch"])
    chosen: dict[str, TreePackage] = {}
    for tree in trees:
        for pkg in tree:
            if pkg.name not in wanted or pkg.arch not in allowed:
                continue
            best = chosen.get(pkg.name)
            if best is None:
                chosen[pkg.name] = pkg
                continue
            order = compare_evr(pkg.evr, best.evr)
            if order > 0 or (order == 0 and allowed.index(pkg.arch) < allowed.index(best.arch)):
                chosen[pkg.name] = pkg
    missing = [n for n in wanted if n not in chosen]
    if missing:
        raise UsageError(f"the tree has no {arch}-compatible package for: {', '.join(missing)}")
    return [chosen[n] for n in wanted]
