"""Version comparison: rebuild.evr's parsed keys (compare_evr) against librpm's labelCompare in the same
process, on the same pairs; and parse-and-compare from strings (rebuild.evr.compare) for context.

Target: compare_evr >= 1,000,000 comparisons/s.

    .venv/bin/python bench/evr.py [--runs N]
"""

from __future__ import annotations

import os
import random
import time

from common import median, options, report

from rebuild.systems.evr import compare, compare_evr, parse


def pairs(n: int) -> list[tuple[str, str]]:
    rng = random.Random(7)

    def one() -> str:
        epoch = f"{rng.randint(0, 3)}:" if rng.random() < 0.3 else ""
        version = ".".join(str(rng.randint(0, 20)) + rng.choice(["", "", "a", "b", "rc1", "~pre"]) for _ in range(3))
        return f"{epoch}{version}-{rng.randint(1, 50)}.el{rng.choice(['7', '7_3', '8'])}"

    return [(one(), one()) for _ in range(n)]


def rate(fn, items, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for a, b in items:
            fn(a, b)
        times.append(time.perf_counter() - start)
    return len(items) / median(times)


def main() -> dict:
    args = options(runs=7)
    raw = pairs(20000)
    parsed = [(parse(a), parse(b)) for a, b in raw]
    row = {"cores": os.cpu_count(), "keys_per_s": round(rate(compare_evr, parsed, args.runs)),
           "strings_per_s": round(rate(compare, raw, args.runs))}
    try:
        import rpm

        labels = [(a.label(), b.label()) for a, b in parsed]
        row["librpm_per_s"] = round(rate(rpm.labelCompare, labels, args.runs))
        mismatches = sum(1 for (a, b), (la, lb) in zip(parsed, labels, strict=False) if compare_evr(a, b) != rpm.labelCompare(la, lb))
        row["mismatches"] = mismatches
    except ImportError:
        row["librpm_per_s"] = None
    ratio = f", {row['keys_per_s'] / row['librpm_per_s']:.2f}x librpm's labelCompare" if row.get("librpm_per_s") else ""
    report(row, args,
           f"compare_evr on parsed versions: {row['keys_per_s'] / 1e6:.2f} M/s (target >= 1 M/s){ratio};"
           f" parse and compare from strings: {row['strings_per_s'] / 1e6:.2f} M/s;"
           f" disagreements with librpm: {row.get('mismatches', 'n/a')} of {len(raw)}")
    return row


if __name__ == "__main__":
    main()
