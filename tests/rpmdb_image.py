"""Images whose rpmdb holds packages the test builds: one spec, one subpackage per package."""

from __future__ import annotations

import subprocess
from pathlib import Path


def packages_spec(packages: list[tuple]) -> str:
    """A spec that builds one empty noarch package per (name, epoch, version, release[, requires]),
    each requiring what its fifth item lists."""
    lines = ["Name: floorpkgs", "Version: 1", "Release: 1", "Summary: test packages", "License: MIT",
             "BuildArch: noarch", "%description", "test packages"]
    for name, epoch, version, release, *rest in packages:
        lines += [f"%package -n {name}", f"Summary: {name}"]
        if epoch is not None:
            lines.append(f"Epoch: {epoch}")
        lines += [f"Requires: {r}" for r in (rest[0] if rest else ())]
        lines += [f"Version: {version}", f"Release: {release}", f"%description -n {name}", name, f"%files -n {name}"]
    return "\n".join(lines) + "\n"


# what rpm 4.0.4 can install: a gzip payload and MD5 file digests
OLD_FORMAT = ["--define", "_binary_payload w9.gzdio", "--define", "_binary_filedigest_algorithm 1"]


def build_packages(packages, out: Path, *, old: bool = False) -> Path:
    """Build the packages with the host's rpmbuild (the 2003 way with *old*); return the folder holding them."""
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "floorpkgs.spec"
    spec.write_text(packages_spec(packages))
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {out / 'top'}", *(OLD_FORMAT if old else []),
                    str(spec)], check=True, capture_output=True)
    return out / "top" / "RPMS" / "noarch"


def image_with_packages(base_image: str, rpms: Path, tag: str) -> str:
    """Install *rpms* (--nodeps, --justdb) into a container of *base_image* and commit it as *tag*."""
    import docker
    import docker.types

    client = docker.from_env()
    container = client.containers.create(
        base_image,
        ["sh", "-c", "rpm -i --nodeps --justdb /rpms/*.rpm"],
        network_mode="none",
        # a mount, not volumes=: that would also declare VOLUME /rpms in the committed image
        mounts=[docker.types.Mount("/rpms", str(rpms), type="bind", read_only=True)],
        labels={"org.rebuild.test": "1"},
    )
    try:
        container.start()
        result = container.wait()
        assert result["StatusCode"] == 0, container.logs().decode()
        repository, _, version = tag.rpartition(":")
        image = container.commit(repository=repository, tag=version)
        return image.id
    finally:
        container.remove(force=True, v=True)
