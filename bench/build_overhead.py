"""Fixed overhead of `rebuild build` over a bare `docker run ... rpmbuild --rebuild`.

Same SRPM, same image, runs in pairs (the order alternating from pair to pair). Prints the
median of the pairs' overheads (rebuild minus bare, seconds) and ratios, for the demo
package and for a generated package whose bare build takes about 10 s (7 alternating pairs, median). Target:
overhead <= 0.5 s on the demo; the ~10 s package's ratio is shown (a fixed overhead weighs more on a short
build; the ratio target is on the real sendmail build, bench/sendmail.py).

    .venv/bin/python bench/build_overhead.py [--runs N]
"""

from __future__ import annotations

import shutil
import sys

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

from rebuild.cli.build import EXAMPLE


def bare(image: str, srpm) -> list[str]:
    return [
        "docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "-e", "HOME=/tmp",
        "-v", f"{srpm}:/srpm/{srpm.name}:ro", image,
        "rpmbuild", "--rebuild", "--define", "_topdir /tmp/top", f"/srpm/{srpm.name}",
    ]


def measure(label: str, image: str, srpm, recipe, runs: int, tmp) -> dict:
    out = tmp / f"out-{label}"
    rebuild_times, bare_times = [], []
    timed(bare(image, srpm))  # warm-up
    for i in range(runs):
        # pairs in alternating order: neither side always runs first after the other's clean-up
        for side in (("bare", "rebuild") if i % 2 == 0 else ("rebuild", "bare")):
            if side == "bare":
                bare_times.append(timed(bare(image, srpm)))
            else:
                shutil.rmtree(out, ignore_errors=True)
                rebuild_times.append(timed([*REBUILD, "-q", "build", str(recipe), "--out", str(out)]))
    print(f"{label}: bare {[round(t, 2) for t in bare_times]} rebuild {[round(t, 2) for t in rebuild_times]}",
          file=sys.stderr)
    overheads = [r - b for r, b in zip(rebuild_times, bare_times, strict=False)]
    ratios = [r / b for r, b in zip(rebuild_times, bare_times, strict=False)]
    return {
        "package": label,
        "bare_s": round(median(bare_times), 3),
        "rebuild_s": round(median(rebuild_times), 3),
        "overhead_s": round(median(overheads), 3),
        "ratio": round(median(ratios), 3),
    }


def main() -> list[dict]:
    args = options(runs=7)
    _, image = testroot()
    tmp = workdir()
    try:
        demo_src = EXAMPLE
        demo = make_srpm(demo_src / "hello.spec", demo_src, tmp / "demo")
        demo_recipe = write_recipe(tmp, demo, "hello")
        (tmp / "gen").mkdir()
        spec = tmp / "gen" / "compile10.spec"
        spec.write_text(compile_spec("compile10", files=8))
        gen = make_srpm(spec, spec.parent, tmp / "gen")
        gen_recipe = write_recipe(tmp, gen, "compile10")
        rows = [
            measure("demo (hello)", image, demo, demo_recipe, args.runs, tmp),
            measure("generated ~10 s", image, gen, gen_recipe, args.runs, tmp),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(rows, args,
           f"{'package':<18} {'bare s':>8} {'rebuild s':>10} {'overhead s':>11} {'ratio':>6}",
           *(f"{r['package']:<18} {r['bare_s']:>8} {r['rebuild_s']:>10} {r['overhead_s']:>11} {r['ratio']:>6}"
             for r in rows),
           "target: overhead <= 0.5 s on the demo (the ~10 s package's ratio is shown)")
    return rows


if __name__ == "__main__":
    main()
