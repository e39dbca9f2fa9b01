"""`rebuild check-deps` on a 1,000-floor manifest against an image holding 1,000 packages, against a loop of
one `rpm -q` per package in the same container: with the image's installed list cached (the usual case: an
image never changes) and uncached (an empty cache each run: one container's `rpm -qa`). rebuild runs as
users run it, installed as `pipx install` installs it (common.installed_rebuild: a wheel, Debian's python3,
no extras); the checkout's .venv (editable, with the test extras, paramiko among them) is shown beside it.

Targets: cached <= 0.5 s (the interpreter's start-up bounds it; the loop is shown for scale); uncached
<= 0.8 s.

    .venv/bin/python bench/check_deps.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from common import REBUILD, ROOT, installed_rebuild, median, options, report, testroot, workdir

sys.path.insert(0, str(ROOT))
from tests.rpmdb_image import build_packages, image_with_packages  # noqa: E402

COUNT = 1000
CHECKOUT = [str(ROOT / ".venv" / "bin" / "rebuild")] if (ROOT / ".venv/bin/rebuild").exists() else REBUILD


def main() -> dict:
    args = options(runs=5, rounds=3)
    _, base = testroot()
    tmp = workdir()
    try:
        packages = [(f"benchpkg{i:04d}", None, f"1.{i % 7}", f"{i % 5}.el") for i in range(COUNT)]
        rpms = build_packages(packages, tmp / "pkgs")
        image = image_with_packages(base, rpms, "rebuild-bench/rpmdb1000:1")
        manifest = tmp / "floors.yaml"
        manifest.write_text("floors:\n" + "".join(f'  {n}: "1.{i % 7}-{i % 5}.el"\n' for i, (n, *_rest) in enumerate(packages)))
        names = " ".join(n for n, *_ in packages)
        rebuild_times, uncached, checkout_times, loops, ratios = [], [], [], [], []
        flags = ["-q", "check-deps", "--manifest", str(manifest), "--image", image]
        command, in_checkout = [*installed_rebuild(tmp), *flags], [*CHECKOUT, *flags]
        env = {**os.environ, "REBUILD_CACHE": str(tmp / "cache")}
        subprocess.run(command, capture_output=True, env=env)  # fills the cache
        # rounds of rebuild runs and one loop each, the ratio taken per round: a slow spell of the
        # machine hits both sides of a ratio.
        # The loop's container lives only for its loop: a running container slows every other
        # container start on this engine by about 60 ms.
        for round_ in range(args.rounds):
            for run in range(args.runs):
                start = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True, env=env)
                rebuild_times.append(time.perf_counter() - start)
                assert proc.returncode == 0, proc.stderr + proc.stdout[-500:]
                fresh = {**os.environ, "REBUILD_CACHE": str(tmp / f"fresh-{round_}-{run}")}
                start = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True, env=fresh)
                uncached.append(time.perf_counter() - start)
                assert proc.returncode == 0, proc.stderr + proc.stdout[-500:]
                start = time.perf_counter()
                proc = subprocess.run(in_checkout, capture_output=True, text=True, env=env)
                checkout_times.append(time.perf_counter() - start)
                assert proc.returncode == 0, proc.stderr + proc.stdout[-500:]
            container = subprocess.run(["docker", "run", "-d", "--network", "none", image, "sleep", "600"],
                                       capture_output=True, text=True, check=True).stdout.strip()
            try:
                start = time.perf_counter()
                subprocess.run(["docker", "exec", container, "sh", "-c",
                                f"for p in {names}; do rpm -q $p >/dev/null; done"], check=True)
                loops.append(time.perf_counter() - start)
                ratios.append(loops[-1] / median(rebuild_times[-args.runs:]))
            finally:
                subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["docker", "rmi", "rebuild-bench/rpmdb1000:1"], capture_output=True)
        subprocess.run(["docker", "image", "prune", "-f", "--filter", "label=org.rebuild.test=1"], capture_output=True)
    row = {"floors": COUNT, "cores": os.cpu_count(), "rebuild_s": round(median(rebuild_times), 3),
           "uncached_s": round(median(uncached), 3), "checkout_s": round(median(checkout_times), 3),
           "rpm_q_loop_s": round(median(loops), 3),
           "speedup": round(median(ratios), 1), "speedup_per_round": [round(r, 1) for r in ratios]}
    report(row, args, f"check-deps, {COUNT} floors vs {COUNT} installed packages ({row['cores']} cores)",
           f"  cached list (whole process, median of {len(rebuild_times)}): {row['rebuild_s']} s   (target <= 0.5 s)",
           f"  cached list, the checkout's .venv (median of {len(checkout_times)}): {row['checkout_s']} s",
           f"  uncached, one rpm -qa container (median of {len(uncached)}): {row['uncached_s']} s   (target <= 0.8 s)",
           f"  one rpm -q per package in one container (median of {len(loops)}): {row['rpm_q_loop_s']} s",
           f"  speedup, cached: {row['speedup']}x, median of the rounds' {row['speedup_per_round']}")
    return row


if __name__ == "__main__":
    main()
