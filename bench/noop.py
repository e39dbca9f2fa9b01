"""Second `rebuild build` of an unchanged recipe vs the first, on the generated ~10 s package.

Targets: the second under 0.5 s and at least 20x faster than the first.

    .venv/bin/python bench/noop.py
"""

from __future__ import annotations

import shutil

from common import (
    REBUILD, compile_spec, make_srpm, median, options, report,
    testroot, timed, workdir, write_recipe,
)


def main() -> dict:
    args = options(runs=5)
    testroot()
    tmp = workdir()
    try:
        (tmp / "gen").mkdir()
        spec = tmp / "gen" / "compile10.spec"
        spec.write_text(compile_spec("compile10", files=8))
        recipe = write_recipe(tmp, make_srpm(spec, spec.parent, tmp / "gen"), "compile10")
        out = tmp / "out"
        first = timed([*REBUILD, "-q", "build", str(recipe), "--out", str(out)])
        again = [timed([*REBUILD, "-q", "build", str(recipe), "--out", str(out)]) for _ in range(args.runs)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row = {"first_s": round(first, 3), "noop_s": round(median(again), 3), "speedup": round(first / median(again), 1)}
    report(row, args, f"no-op rebuild: first build {row['first_s']} s, unchanged rebuild {row['noop_s']} s "
                      f"(median of {args.runs}), {row['speedup']}x   (targets: < 0.5 s, >= 20x)")
    return row


if __name__ == "__main__":
    main()
