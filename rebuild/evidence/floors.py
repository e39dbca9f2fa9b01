"""``rebuild floors suggest``: a floors manifest from a result's build root, to check other machines with
``check-deps``. For each BuildRequires of the result's SRPM and each runtime Requires of its RPMs, the root
package that met it (a path: the package owning it) at the version the root had, as the root image's own
rpm answers (rpm 4.0.4's rpmdb is readable only by it)."""

from __future__ import annotations

import json
from pathlib import Path

from rebuild.errors import UsageError
from rebuild.pipeline.result import ResultDir
from rebuild.systems.engine import Engine
from rebuild.systems.rpmfile import requires_of

# each capability: the root's package that provides it (a path: that owns it), as the root's own rpm answers
_WHO = r"""
for cap in "$@"; do
  case "$cap" in /*) out=$(rpm -qf --qf "$QF" "$cap" 2>/dev/null) ;; *) out=$(rpm -q --whatprovides --qf "$QF" "$cap" 2>/dev/null) ;; esac
  [ $? = 0 ] && printf '%s\n' "$out" | sed "s|^|rebuild-who $cap |" | head -n 1
done
exit 0
"""


def suggest(result: Path, engine: Engine, *, image: str | None = None) -> str:
    """A floors manifest from *result*'s build root: for each BuildRequires of its SRPM and each runtime
    Requires of its RPMs, the root package that met it, at the version the root had. The root is the
    result's build-root image (a layer, or the target's image), asked with its own rpm."""
    manifest = ResultDir(result).verify()
    image = image or (manifest.root or {}).get("image_id") or manifest.target.image_id
    wanted: dict[str, str] = {}
    for output in manifest.outputs:
        for capability in requires_of(result / output.file):
            if capability.startswith(("rpmlib(", "config(")) or capability in wanted:
                continue
            wanted[capability] = "BuildRequires" if output.source else f"required by {output.name}"
    found: dict[str, tuple[str, str, str]] = {}   # package -> (evr, capability, why)
    unmet: list[str] = []
    if wanted:
        chunks: list[bytes] = []
        wrap = [manifest.target.personality] if manifest.target.personality else []
        if engine.inspect_image(image) is None:
            raise UsageError(f"{result}: its build root image {image} is no longer in the engine; give --image"
                             " (the target's image, or a layer made again by building the result once more)")
        with engine.container(image, mounts=[]) as box:
            box.run([*wrap, "sh", "-c", _WHO, "who", *wanted], user="0:0", output=chunks.append,
                    env={"QF": "%{NAME} %{EPOCH} %{VERSION} %{RELEASE}"},
                    shown=[*wrap, "rpm", "-q", "--whatprovides", f"({len(wanted)} capabilities)"])
        answers = {}
        for line in b"".join(chunks).decode(errors="replace").splitlines():
            fields = line.split()
            if len(fields) == 6 and fields[0] == "rebuild-who":
                answers[fields[1]] = fields[2:]
        for capability, why in wanted.items():
            if capability not in answers:
                unmet.append(capability)
                continue
            name, epoch, version, release = answers[capability]
            evr = ("" if epoch == "(none)" else f"{epoch}:") + f"{version}-{release}"
            if name not in found or found[name][2] != "BuildRequires" and why == "BuildRequires":
                found[name] = (evr, capability, why)
    lines = [f"# floors suggested by `rebuild floors suggest` from {manifest.inputs.srpm.nevra} built on"
             f" {manifest.target.name} (build root {image}):",
             "# the versions its build root had of what the build and its RPMs need; check another machine or"
             " image with `rebuild check-deps --manifest THIS`", "floors:"]
    for name in sorted(found):
        evr, capability, why = found[name]
        note = why if capability == name else f"{why}: {capability}"
        lines.append(f"  {name}: {json.dumps(evr)}  # {note}")
    lines += [f"# not met by a package of the root's rpmdb (a Debian root, or provided by no package): {c}"
              for c in sorted(unmet)]
    return "\n".join(lines) + "\n"
