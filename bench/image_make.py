"""Making a tree image: `rebuild image i686-test` from the i686 test tree (tests/i686tree.py, 105 packages)
with a cold cache (every package copied from the tree and checked, streamed into the engine, registered),
warm (`--force`: solved and streamed again, nothing fetched), and made again after the image was pruned
from the engine, against `docker import` of a tarball of the same root (`docker export` of the image), the
floor of any make that imports a root.

Target: a warm re-make <= 2x the `docker import`.

    .venv/bin/python bench/image_make.py [--runs N]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import REBUILD, ROOT, median, options, report, timed, workdir

from rebuild.config.target import SHIPPED


def tree() -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.i686tree import build_tree

    return build_tree(log=lambda message: print(message, file=sys.stderr))


def main() -> dict:
    args = options(runs=3)
    source = tree()
    tmp = workdir()
    tag = "rebuild-bench/i686-test:1"
    ids: set[str] = set()
    try:
        home = tmp / "home"
        shutil.copytree(SHIPPED / "i686-test", home / "containers" / "i686-test")
        target_yaml = home / "containers" / "i686-test" / "target.yaml"
        target_yaml.write_text(target_yaml.read_text().replace("tag: rebuild/i686-test:1", f"tag: {tag}"))
        make = [*REBUILD, "-q", "image", "i686-test", "--mirror", str(source / "os"), "--updates", str(source / "updates")]
        env = {**os.environ, "REBUILD_HOME": str(home), "REBUILD_CACHE": str(tmp / "cache-0")}
        # the root to import: the image's own, exported once
        made = subprocess.run(make, env=env, capture_output=True, text=True, check=True).stdout.split()[0]
        tag = made
        container = subprocess.run(["docker", "create", made, "true"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        tarball = tmp / "root.tar"
        try:
            subprocess.run(["docker", "export", "-o", str(tarball), container], check=True)
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True)
        cold, warm, pruned, imports = [], [], [], []

        def made_id() -> None:  # each make leaves an image; removed at the end, whatever tag it lost
            ids.add(subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", made], capture_output=True,
                                   text=True).stdout.strip())

        made_id()
        # interleaved, so that both sides meet the same disk (its write-back and discards vary by seconds)
        for i in range(args.runs):
            env = {**os.environ, "REBUILD_HOME": str(home), "REBUILD_CACHE": str(tmp / f"cache-{i + 1}")}
            cold.append(timed(make, env=env))
            made_id()
            imports.append(timed(["docker", "import", str(tarball), f"rebuild-bench/import:{i}"]))
            warm.append(timed([*make, "--force"], env=env))
            made_id()
            removed = subprocess.run(["docker", "rmi", "-f", made], capture_output=True, text=True)
            if removed.returncode != 0:
                raise SystemExit(f"image_make.py: docker rmi {made}: {removed.stderr.strip()}")
            pruned.append(timed(make, env=env))
            made_id()
        size_mib = tarball.stat().st_size / (1 << 20)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for i in range(args.runs):
            subprocess.run(["docker", "rmi", f"rebuild-bench/import:{i}"], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag, *sorted(ids - {""})], capture_output=True)
    print(f"cold {[round(t, 2) for t in cold]} warm {[round(t, 2) for t in warm]} pruned {[round(t, 2) for t in pruned]}"
          f" docker import {[round(t, 2) for t in imports]}", file=sys.stderr)
    row = {"cores": os.cpu_count(), "cold_s": round(median(cold), 2), "warm_s": round(median(warm), 2),
           "pruned_s": round(median(pruned), 2), "import_s": round(median(imports), 2), "root_mib": round(size_mib),
           "ratio": round(median(warm) / median(imports), 2), "ratio_pruned": round(median(pruned) / median(imports), 2)}
    report(row, args,
           f"rebuild image i686-test ({row['root_mib']} MiB root; {row['cores']} cores): cold cache {row['cold_s']} s;"
           f" docker import of the same root {row['import_s']} s",
           f"  warm --force (unpacked again) {row['warm_s']} s: {row['ratio']}x import (target <= 2)",
           f"  made again after the image was pruned {row['pruned_s']} s: {row['ratio_pruned']}x import")
    return row


if __name__ == "__main__":
    main()
