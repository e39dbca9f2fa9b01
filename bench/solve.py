"""Solving a build root over a generated tree of 1,500 packages, with the headers cached.

The tree is made once by rpmbuild (one spec, 1,500 subpackages, each requiring capabilities of a few
others: sonames, versioned names, files). Figures: reading the headers the first time (every RPM
opened), reading them again (the header cache), and solving 40 wants over the tree, each the median
of several runs; the cache's hit rate on the second read. Target: the cached read and the solve
under 1 s together.

    .venv/bin/python bench/solve.py
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import median, options, report, workdir  # noqa: E402

PACKAGES = 1500


def generate(folder: Path, count: int) -> None:
    """A tree of *count* packages whose requires point at packages with lower numbers."""
    rng = random.Random(7)
    lines = ["Name: benchtree", "Version: 1", "Release: 1", "Summary: bench", "License: MIT", "BuildArch: noarch",
             "%description", "bench", "%install"]
    for i in range(count):
        lines.append(f"mkdir -p %{{buildroot}}/usr/share/p{i} && touch %{{buildroot}}/usr/share/p{i}/a "
                     f"%{{buildroot}}/usr/share/p{i}/b && mkdir -p %{{buildroot}}/usr/bin && touch %{{buildroot}}/usr/bin/tool{i}")
    for i in range(count):
        lines += [f"%package -n p{i}", f"Summary: p{i}", f"Version: {1 + i % 7}.{i % 13}", f"Provides: libp{i}.so.1"]
        for dep in rng.sample(range(i), min(i, 3)):
            kind = dep % 3
            lines.append(f"Requires: libp{dep}.so.1" if kind == 0 else
                         f"Requires: p{dep} >= 1.0" if kind == 1 else f"Requires: /usr/bin/tool{dep}")
        lines += [f"%description -n p{i}", f"p{i}", f"%files -n p{i}", f"/usr/share/p{i}", f"/usr/bin/tool{i}"]
    spec = folder / "bench.spec"
    spec.write_text("\n".join(lines) + "\n")
    rpms = folder / "tree"
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {folder / 'top'}", "--define", f"_rpmdir {rpms}",
                    "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", str(spec)],
                   check=True, capture_output=True)


def main() -> dict:
    from rebuild.roots.solver import Want, solve
    from rebuild.roots.treeindex import IndexStats, read_tree

    args = options(runs=5)
    tmp = workdir()
    try:
        start = time.perf_counter()
        generate(tmp, PACKAGES)
        made = time.perf_counter() - start
        cold_stats, warm_stats = IndexStats(), IndexStats()
        start = time.perf_counter()
        read_tree(str(tmp / "tree"), "os", tmp / "cache", stats=cold_stats)
        cold = time.perf_counter() - start
        warm, solves, tree = [], [], []
        wants = [Want("base", f"p{i}") for i in range(PACKAGES - 40, PACKAGES)]
        for _ in range(args.runs):
            warm_stats = IndexStats()
            start = time.perf_counter()
            tree = read_tree(str(tmp / "tree"), "os", tmp / "cache", stats=warm_stats)
            warm.append(time.perf_counter() - start)
            start = time.perf_counter()
            solution = solve([tree], "x86_64", wants)
            solves.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row = {"packages": len(tree), "installed": len(solution.install), "made_s": round(made, 1),
           "cold_read_s": round(cold, 3), "cached_read_s": round(median(warm), 3), "solve_s": round(median(solves), 3),
           "cached_total_s": round(median(warm) + median(solves), 3),
           "hit_rate": round(warm_stats.hits / max(warm_stats.hits + warm_stats.misses, 1), 3),
           "cold_over_cached": round(cold / median(warm), 1)}
    report(row, args,
           f"solve over {row['packages']} packages ({row['installed']} installed): cached headers {row['cached_read_s']} s"
           f" + solve {row['solve_s']} s = {row['cached_total_s']} s (target < 1 s); header cache hit rate"
           f" {row['hit_rate']:.0%}; first read {row['cold_read_s']} s ({row['cold_over_cached']}x the cached read)")
    return row


if __name__ == "__main__":
    main()
