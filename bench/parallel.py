"""4 independent recipes (a few seconds of compiling each): --jobs 2 vs --jobs 1.

Target on 2 cores: ratio (jobs 2 / jobs 1) at most 0.65.

    .venv/bin/python bench/parallel.py
"""

from __future__ import annotations

import shutil

from common import (
    REBUILD,
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


def main() -> dict:
    args = options(runs=3)
    testroot()
    tmp = workdir()
    try:
        recipes = []
        for n in range(4):
            folder = tmp / f"p{n}"
            folder.mkdir()
            spec = folder / f"par{n}.spec"
            spec.write_text(compile_spec(f"par{n}", files=3))
            recipes.append(str(write_recipe(tmp, make_srpm(spec, folder, folder), f"par{n}")))
        serial, parallel = [], []
        for i in range(args.runs):
            serial.append(timed([*REBUILD, "-q", "build", *recipes, "--out", str(tmp / f"s{i}"), "--jobs", "1"]))
            parallel.append(timed([*REBUILD, "-q", "build", *recipes, "--out", str(tmp / f"p{i}"), "--jobs", "2"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [p / s for p, s in zip(parallel, serial, strict=False)]
    row = {"jobs1_s": round(median(serial), 3), "jobs2_s": round(median(parallel), 3), "ratio": round(median(ratios), 3)}
    report(row, args, f"4 recipes: --jobs 1 {row['jobs1_s']} s, --jobs 2 {row['jobs2_s']} s, "
                      f"ratio {row['ratio']} (median of {args.runs}; target <= 0.65 on 2 cores)")
    return row


if __name__ == "__main__":
    main()
