"""Images whose rpmdb holds packages the test builds: one spec, one subpackage per package."""

from __future__ import annotations

import subprocess
from pathlib import Path


def packages_spec(packages: list[tuple[str, int | None, str, str]]) -> str:
    """A spec that builds one empty noarch package per (name, epoch, version, release)."""
    lines = ["Name: floorpkgs", "Version: 1", "Release: 1", "Summary: test packages", "License: MIT",
             "BuildArch: noarch", "%description", "test packages"]
    for name, epoch, version, release in packages:
        lines += [f"%package -n {name}", f"Summary: {name}"]
        if epoch is not None:
            lines.append(f"Epoch: {epoch}")
        lines += [f"Version: {version}", f"Release: {release}", f"%description -n {name}", name, f"%files -n {name}"]
    return "\n".join(lines) + "\n"


def build_packages(packages, out: Path) -> Path:
    """Build the packages with the host's rpmbuild; return the folder holding the RPMs."""
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "floorpkgs.spec"
    spec.write_text(packages_spec(packages))
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {out / 'top'}", str(spec)],
                   check=True, capture_output=True)
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
