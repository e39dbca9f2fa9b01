"""``rebuild shell``: a shell in a fresh container of a target's root, as the build user, under its personality.

With ``--result DIR``, the container is the root that result was built in (its layer, when the engine
still has it) and the result is mounted: a failed build's tree (``DIR/tree``) at /build, writable, as
the build had it; a result folder read-only at /result. The container is removed on exit.
"""

from __future__ import annotations

from pathlib import Path

from rebuild.config.target import Target
from rebuild.errors import UsageError
from rebuild.files import read_json
from rebuild.roots.pins import check_image
from rebuild.systems.engine import Engine, Mount

HOSTNAME = "rebuild.localdomain"


def open_shell(target: Target, engine: Engine, cache: Path, result: Path | None, argv: list[str], tty: bool) -> int:
    """Run *argv* (a login shell when empty) in the target's root; return its exit code."""
    image = check_image(target, engine, cache)
    mounts, workdir = [], "/tmp"
    if result is not None:
        folder = Path(result).resolve()
        if not folder.is_dir():
            raise UsageError(f"--result {result}: no such folder")
        if any(ch in str(folder) for ch in ',"\n\r'):
            # docker's --mount reads its value as comma-separated fields: a comma would add options
            raise UsageError(f"--result {str(folder)!r}: a folder whose path holds a comma, quote or newline cannot"
                             " be mounted; move or rename it")
        layer = _layer(folder)
        info = engine.inspect_image(layer) if layer else None
        # only a layer made from this target's definition: a result's manifest may not pick any image
        if info is not None and info.labels.get("org.rebuild.definition") == target.image_key:
            image = layer
        if (folder / "tree").is_dir():
            mounts.append(Mount(folder / "tree", "/build"))
            workdir = "/build"
        else:
            mounts.append(Mount(folder, "/result", read_only=True))
            workdir = "/result"
    command = target.wrap(argv or ["/bin/sh"])
    return engine.shell(image, command, mounts=mounts, user=f"{target.uid}:{target.uid}", workdir=workdir,
                        hostname=HOSTNAME, tty=tty)


def _layer(folder: Path) -> str | None:
    try:
        root = read_json(folder / "manifest.json", "manifest", max_bytes=32 << 20).get("root") or {}
    except (UsageError, AttributeError):
        return None
    image = root.get("image_id")
    return image if isinstance(image, str) and image.startswith("sha256:") else None
