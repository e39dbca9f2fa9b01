"""``rebuild patch --check``: rpmspec reads an edited spec in a throwaway container of a target, never on the
host (a spec's ``%(...)`` runs shell code while rpm parses it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rebuild.pipeline.spec import SpecText, base_name, encoded
from rebuild.roots.pins import check_image
from rebuild.systems.engine import Mount


def check_in_container(path: Path, names: list[str], target, engine, log) -> tuple[bool, list[str]]:
    """Whether *target*'s rpmspec parses *path*, and what each of *names* expands to at the spec's end (read
    from a copy with one %{echo:...} line appended, which rpm prints as it parses).

    A spec is untrusted input: ``%global x %(...)`` runs shell code while rpm parses it. So it is parsed in a
    throwaway container of the target's pinned image (no network, the target's build user), never on the
    host. rpm 4.18 refuses invalid UTF-8 by default; 2003 specs are Latin-1, so that check is turned off."""

    image = check_image(target, engine, log=log)
    text = SpecText.read(path)
    with tempfile.TemporaryDirectory(prefix="rebuild-check-") as tmp:
        copy = Path(tmp) / path.name
        probes = "".join(f"%{{echo:rebuild-check {base_name(n)} %{{?{base_name(n)}}}}}{text.newline}" for n in names)
        copy.write_bytes(encoded(path, text.text() + (text.newline if text.endings[-1:] == [""] else "") + probes,
                                 text.encoding))
        Path(tmp).chmod(0o755)
        copy.chmod(0o644)
        chunks: list[bytes] = []
        with engine.container(image, mounts=[Mount(Path(tmp), "/check", read_only=True)]) as box:
            code = box.run(target.wrap(["rpmspec", "-P", "--define", "_invalid_encoding_terminates_build 0",
                                        f"/check/{copy.name}"]), user=f"{target.uid}:{target.uid}",
                           env={"HOME": "/tmp", "LC_ALL": "C"}, output=chunks.append)
    output = b"".join(chunks).decode(errors="replace")
    if code != 0:
        errors = [line for line in output.splitlines() if line.startswith("error:")] or output.splitlines()[-1:]
        reason = " ".join(" ".join(errors[:2]).split())[:300] or f"exit {code}"
        hint = " (2003 tags such as Copyright: are refused by rpm 4.18; builds check the spec with the target's" \
               " own rpm)" if "Unknown tag" in reason else ""
        if code == 127:
            reason, hint = f"target {target.name} has no rpmspec (rpm 4.0.x); check with a target that has", ""
        return False, [f"check: {target.name}'s rpmspec cannot parse {path.name}: {reason}{hint}"]
    found = {}
    for line in output.splitlines():
        if line.startswith("rebuild-check "):
            parts = line.split(None, 2)
            found[parts[1]] = parts[2] if len(parts) > 2 else ""
    return True, [f"check: {path.name} parses (rpmspec in a {target.name} container)"] + \
        [f"check: %{{{n}}} = {v!r}" for n, v in found.items()]
