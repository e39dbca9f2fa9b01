"""`make bench`: run every benchmark and print one table of figures against targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str):
    proc = subprocess.run([sys.executable, str(HERE / script), "--json", *args], capture_output=True, text=True,
                          cwd=HERE)
    if proc.returncode != 0:
        print(f"{script} failed:\n{proc.stderr}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    rows = []
    overhead = run("build_overhead.py")
    if overhead:
        demo, gen = overhead
        rows.append(("build overhead, demo", f"{demo['overhead_s']} s", "< 0.5 s", demo["overhead_s"] < 0.5))
        rows.append(("build overhead, ~10 s pkg", f"{gen['overhead_s']} s", "< 0.5 s", gen["overhead_s"] < 0.5))
        rows.append(("build ratio, ~10 s pkg", f"{gen['ratio']}", "<= 1.05", gen["ratio"] <= 1.05))
    noop = run("noop.py")
    if noop:
        rows.append(("no-op rebuild", f"{noop['noop_s']} s", "< 0.5 s", noop["noop_s"] < 0.5))
        rows.append(("no-op speedup", f"{noop['speedup']}x", ">= 20x", noop["speedup"] >= 20))
    par = run("parallel.py")
    if par:
        rows.append(("parallel ratio jobs2/jobs1", f"{par['ratio']}", "<= 0.65", par["ratio"] <= 0.65))
    deps = run("check_deps.py")
    if deps:
        rows.append(("check-deps 1,000 floors", f"{deps['rebuild_s']} s", "< 3 s", deps["rebuild_s"] < 3))
        rows.append(("check-deps vs rpm -q loop", f"{deps['speedup']}x", ">= 20x", deps["speedup"] >= 20))
    fetch = run("fetch.py") if (HERE / "fetch.py").exists() else None
    if fetch:
        rows.append(("fetch rate vs curl", f"{fetch['ratio']}", ">= 0.8", fetch["ratio"] >= 0.8))
        rows.append(("fetch rate vs curl + sha256", f"{fetch['ratio_same_work']}", "(shown)", True))
    floor = run("fetch_floor.py")
    if floor:
        rows.append(("minimal downloader + sha256 vs curl", f"{floor['ratio_minimal_sha256']}", "(floor)", True))
        rows.append(("fetch peak RSS", f"{fetch['peak_rss_mib']} MiB", "< 100 MiB", fetch["peak_rss_mib"] < 100))
        rows.append(("cached re-fetch", f"{fetch['cached_s']} s", "< 0.5 s", fetch["cached_s"] < 0.5))
    scale = run("scaleout.py")
    if scale:
        for image in scale["images"]:
            rows.append((f"image step pulled/made, {image['target']}", f"{image['ratio']}", "(shown)", True))
        rows.append(("archives vs bind mounts, demo", f"{scale['transfer']['ratio']}", "(shown)", True))
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'benchmark':<{width}}  {'figure':>12}  {'target':>10}  met")
    for name, figure, target, met in rows:
        print(f"{name:<{width}}  {figure:>12}  {target:>10}  {'yes' if met else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
