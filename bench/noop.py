"""The no-op rebuild, whole process: a second `rebuild build` of an unchanged recipe (the demo), against
the first build of a generated ~10 s package and against the floor every command pays (the interpreter
started and click imported, `python -c "import click"`), with the import profile of the no-op path.

Targets: the no-op <= 0.3 s (median); >= 20x faster than the first build.

    .venv/bin/python bench/noop.py [--runs N]
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from common import (
    REBUILD,
    ROOT,
    compile_spec,
    make_srpm,
    median,
    options,
    report,
    testroot,
    timed,
    workdir,
    write_recipe,
)

REBUILD_SCRIPT = [str(ROOT / ".venv" / "bin" / "rebuild")] if (ROOT / ".venv/bin/rebuild").exists() else REBUILD


def import_profile(argv: list[str], top: int = 8) -> list[str]:
    """The modules that cost most to import on the path, cumulative microseconds (python -X importtime)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "rebuild", *argv[1:]], capture_output=True,
                          text=True, cwd=ROOT)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and name.startswith(" ") and not name.startswith("  "):
                rows.append((int(cumulative), name.strip()))  # top-level imports only
    return [f"{name} {us / 1000:.1f} ms" for us, name in sorted(rows, reverse=True)[:top]]


def main() -> dict:
    args = options(runs=21)
    testroot()
    tmp = workdir()
    try:
        (tmp / "gen").mkdir()
        spec = tmp / "gen" / "compile10.spec"
        spec.write_text(compile_spec("compile10", files=8))
        recipe = write_recipe(tmp, make_srpm(spec, spec.parent, tmp / "gen"), "compile10")
        out = tmp / "out"
        first = timed([*REBUILD_SCRIPT, "-q", "build", str(recipe), "--out", str(out)])
        command = [*REBUILD_SCRIPT, "-q", "build", str(recipe), "--out", str(out)]
        noops, floors = [], []
        for _ in range(args.runs):
            noops.append(timed(command))
            floors.append(timed([sys.executable, "-c", "import click"]))
        profile = import_profile(["rebuild", "-q", "build", str(recipe), "--out", str(out)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row = {"first_s": round(first, 3), "noop_s": round(median(noops), 4), "floor_s": round(median(floors), 4),
           "speedup": round(first / median(noops), 1), "imports": profile}
    report(row, args,
           f"no-op rebuild: {row['noop_s']} s (median of {args.runs}; target <= 0.3 s); the interpreter with click"
           f" alone {row['floor_s']} s; first build {row['first_s']} s, {row['speedup']}x (target >= 20x)",
           "import profile of the no-op path (top level, cumulative): " + ", ".join(profile))
    return row


if __name__ == "__main__":
    main()
