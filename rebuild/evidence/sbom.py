"""``sbom.spdx.json``: an SPDX 2.3 document for a result: the build root's packages (name, EVR, arch, and the
sha256 of each package file from the solved root's lock; the image's own ``rpm -qa`` where there is no lock,
and ``dpkg-query`` on a Debian root, whose rpmdb is empty),
the build root image, the SRPM, and each built RPM with its sha256, related as the RPMs were made:
each RPM GENERATED_FROM the SRPM, the build root a BUILD_TOOL_OF each RPM and CONTAINS its packages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from rebuild import __version__
from rebuild.files import atomic_write
from rebuild.pipeline.result import Manifest

NOASSERTION = "NOASSERTION"


@dataclass(frozen=True)
class RootPackage:
    name: str
    evr: str
    arch: str
    sha256: str | None = None
    url: str | None = None
    kind: str = "rpm"   # or "deb"
    origin: str | None = None  # the tree it came from: "os", "updates", "chain" (built earlier in a chain build)


def _id(text: str) -> str:
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]", "-", text)


def _purl(name: str, evr: str, arch: str, kind: str = "rpm") -> str:
    if kind == "deb":
        return f"pkg:deb/debian/{name}@{evr}?arch={arch}"
    epoch, _, rest = evr.rpartition(":") if ":" in evr else ("", "", evr)
    qualifiers = f"?arch={arch}" + (f"&epoch={epoch}" if epoch else "")
    return f"pkg:rpm/{name}@{rest}{qualifiers}"


def _package(spdx_id: str, name: str, version: str, *, sha256: str | None, location: str | None,
             purl: str | None = None, file_name: str | None = None, comment: str | None = None) -> dict:
    package = {"SPDXID": spdx_id, "name": name, "versionInfo": version, "downloadLocation": location or NOASSERTION,
               "filesAnalyzed": False, "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
               "copyrightText": NOASSERTION, "supplier": NOASSERTION}
    if sha256:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": sha256}]
    if purl:
        package["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                    "referenceLocator": purl}]
    if file_name:
        package["packageFileName"] = file_name
    if comment:
        package["comment"] = comment
    return package


def root_packages(manifest: Manifest, inventory: list[tuple[str, str, str]] | None,
                  debs: list[tuple[str, str, str]] = ()) -> tuple[list[RootPackage], str]:
    """The build root's packages and where the list came from: the solved root's lock, else the inventories."""
    lock = (manifest.root or {}).get("lock")
    locked = [RootPackage(p["name"], (f"{p['epoch']}:" if p.get("epoch") is not None else "")
                          + f"{p['version']}-{p['release']}", p["arch"], p["sha256"], p.get("url"), origin=p.get("origin"))
              for p in (lock or {}).get("packages", [])]
    if lock and not manifest.root.get("partial"):
        return locked, "the solved root's lock (each package file's sha256)"
    names = {(p.name, p.evr) for p in locked}
    packages = locked + [RootPackage(n, evr, arch) for n, evr, arch in inventory or () if (n, evr) not in names]
    packages += [RootPackage(n, version, arch, kind="deb") for n, version, arch in debs]
    return packages, ("the chain's lock and " if locked else "") + "the image's rpm -qa" + (
        " and dpkg-query" if debs else "") + (" (no lock for the rest)" if locked else " (no lock)")


def sbom(manifest: Manifest, inventory: list[tuple[str, str, str]] | None, created: str,
         debs: list[tuple[str, str, str]] = ()) -> dict:
    """The SPDX 2.3 document (a dict ready for JSON); *created* is an ISO 8601 time."""
    target = manifest.target
    srpm = manifest.inputs.srpm
    key = manifest.build_key or "unkeyed"
    packages, source = root_packages(manifest, inventory, debs)
    image_id = (manifest.root or {}).get("image_id") or target.image_id
    root_id = "SPDXRef-BuildRoot"
    srpm_id = "SPDXRef-SRPM"
    doc_packages = [
        _package(root_id, f"{target.name} build root", image_id, location=NOASSERTION,
                 sha256=image_id.split(":", 1)[1] if image_id.startswith("sha256:") else None,
                 comment=f"the container image the RPMs were built in ({target.image}); its packages come from"
                         f" {source}"),
        _package(srpm_id, srpm.nevra.rsplit(".", 1)[0], srpm.nevra, sha256=srpm.sha256,
                 location=srpm.urls[0] if srpm.urls and srpm.urls[0].startswith(("http://", "https://")) else None,
                 file_name=srpm.file),
    ]
    relationships = [{"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": _id(f"root-{i}-{p.name}")}
                     for i, p in enumerate(packages)]
    for i, p in enumerate(packages):
        doc_packages.append(_package(_id(f"root-{i}-{p.name}"), p.name, p.evr, sha256=p.sha256,
                                     location=p.url if p.url and p.url.startswith(("http://", "https://")) else None,
                                     purl=_purl(p.name, p.evr, p.arch, p.kind),
                                     comment=f"built earlier in this chain build, from {p.url}" if p.origin == "chain"
                                     else None))
    for i, output in enumerate(manifest.outputs):
        rpm_id = _id(f"rpm-{i}-{output.name}")
        evr = (f"{output.epoch}:" if output.epoch is not None else "") + f"{output.version}-{output.release}"
        doc_packages.append(_package(rpm_id, output.name, evr, sha256=output.sha256, location=None,
                                     purl=_purl(output.name, evr, output.arch), file_name=output.file))
        relationships += [
            {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": rpm_id},
            {"spdxElementId": rpm_id, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": srpm_id},
            {"spdxElementId": root_id, "relationshipType": "BUILD_TOOL_OF", "relatedSpdxElement": rpm_id},
        ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{srpm.nevra.rsplit('.', 1)[0]} rebuilt for {target.name}",
        "documentNamespace": f"https://rebuild.invalid/spdx/{target.name}/{key}",
        "creationInfo": {"created": _spdx_time(created), "creators": [f"Tool: rebuild-{__version__}"]},
        "packages": doc_packages,
        "relationships": relationships,
    }


def _spdx_time(iso: str) -> str:
    """SPDX wants YYYY-MM-DDThh:mm:ssZ."""
    from datetime import datetime

    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_sbom(path: Path, document: dict) -> None:
    atomic_write(path, json.dumps(document, indent=2) + "\n", mode=0o644)
