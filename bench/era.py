"""The 14 real 1999 SRPMs of ../shared/era-srpms built bare on i686-test: `--jobs 2` against `--jobs 1`,
the same command otherwise (`--force`, so nothing is taken from an earlier run; some of them fail, as the
era test expects: a failure's time counts like a build's). A first run, not counted, makes the build-root
layers both sides then find cached (else the side that runs first pays for them); then pairs in alternating
order.

Target on 2 cores: ratio (jobs 2 / jobs 1) at most 0.6.

    .venv/bin/python bench/era.py [--runs N]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from common import REBUILD, ROOT, i686_image, median, options, report, workdir


def main() -> dict:
    args = options(runs=2)
    sys.path.insert(0, str(ROOT))
    from tests.i686tree import ERA_SRPMS

    srpms = sorted(ERA_SRPMS.glob("*.src.rpm")) if ERA_SRPMS else []
    if len(srpms) != 14:
        raise SystemExit(f"era.py: the 14 era SRPMs are not at {ERA_SRPMS} (set REBUILD_TEST_ERA_SRPMS)")
    i686_image()
    tmp = workdir()
    times: dict[str, list[float]] = {"1": [], "2": []}

    def build(jobs: str) -> float:
        out = tmp / f"out-{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        proc = subprocess.run([*REBUILD, "-q", "build", *map(str, srpms), "--target", "i686-test", "--force",
                               "--jobs", jobs, "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode not in (0, 10):
            raise SystemExit(f"era.py: --jobs {jobs} exited {proc.returncode}: {proc.stderr[-1500:]}")
        return time.perf_counter() - start

    try:
        build("2")  # the layers
        for i in range(args.runs):
            for jobs in (("1", "2") if i % 2 == 0 else ("2", "1")):
                times[jobs].append(build(jobs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one, two = median(times["1"]), median(times["2"])
    figures = {"jobs1_s": round(one, 1), "jobs2_s": round(two, 1), "ratio": round(two / one, 3)}
    report(figures, args, f"14 era SRPMs on i686-test: --jobs 1 {one:.1f} s, --jobs 2 {two:.1f} s,"
                          f" ratio {two / one:.3f} (target <= 0.6)")
    return figures


if __name__ == "__main__":
    main()
