"""The real sendmail 8.17 build (the demo-sendmail SRPM, made from Debian's source) on i686-test: `rebuild
build` of specs/examples/sendmail-starttls.yaml against a bare `docker run ... rpmbuild --rebuild` of the same
SRPM in the build root rebuild made for it (its layer: the BuildRequires installed), the same user and
personality. Pairs alternate their order; a first rebuild run makes the layer and is not counted. The
recipe's checks (its RPMs installed in a fresh container and run: work the bare build does not do) are
left out of the copy of the recipe the comparison builds; everything else of rebuild's (the spec edit and
its check, the floors, the layer, the collection, manifest, SBOM and provenance) is in.

Target: ratio (rebuild / bare) at most 1.02.

    .venv/bin/python bench/sendmail.py [--runs N]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from common import REBUILD, ROOT, i686_image, median, options, report, timed, workdir

RECIPE = ROOT / "specs" / "examples" / "sendmail-starttls.yaml"


def main() -> dict:
    args = options(runs=3)
    sys.path.insert(0, str(ROOT))
    from tests.sendmail_procedure import make_srpm

    image = i686_image()
    tmp = workdir()
    srpm_dir = ROOT / "build" / "demo-sendmail" / "SRPMS"  # where the recipe looks for it
    try:
        srpm = make_srpm(image, tmp / "srpm")
        srpm_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(srpm, srpm_dir / srpm.name)
        out = tmp / "out"
        data = yaml.safe_load(RECIPE.read_text())
        data.pop("checks", None)
        data["source"]["urls"] = [str(srpm_dir / srpm.name)]
        data["floors"] = str(RECIPE.parent / data["floors"])
        recipe = tmp / "sendmail-build-only.yaml"
        recipe.write_text(yaml.safe_dump(data))
        first = subprocess.run([*REBUILD, "-q", "build", str(recipe), "--force", "--out", str(out), "--json"],
                               cwd=ROOT, capture_output=True, text=True)
        if first.returncode != 0:
            raise SystemExit(f"sendmail.py: the first build failed: {first.stderr[-1500:]}")
        manifest = json.loads((Path(json.loads(first.stdout)[0]["directory"])
                               / "manifest.json").read_text())
        layer = (manifest.get("root") or {}).get("image_id") or image
        command = manifest["target"]["build_command_used"] or "rpmbuild"
        # rpm 4.0.4 makes no folder of its _topdir: the bare build makes them as rebuild's work tree has them
        folders = " ".join(f"/tmp/top/{d}" for d in ("BUILD", "SOURCES", "SPECS", "SRPMS", "RPMS/i386", "RPMS/i686",
                                                      "RPMS/noarch"))
        bare = ["docker", "run", "--rm", "--network", "none", "--user", "500:500", "-e", "HOME=/tmp",
                "-v", f"{srpm}:/srpm/{srpm.name}:ro", layer, "linux32", "sh", "-c",
                f"mkdir -p {folders} && exec {command} --rebuild --define '_topdir /tmp/top' /srpm/{srpm.name}"]
        rebuild_times, bare_times = [], []
        for i in range(args.runs):
            for side in (("bare", "rebuild") if i % 2 == 0 else ("rebuild", "bare")):
                if side == "bare":
                    bare_times.append(timed(bare))
                else:
                    rebuild_times.append(timed([*REBUILD, "-q", "build", str(recipe), "--force", "--out", str(out)],
                                               cwd=ROOT))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [r / b for r, b in zip(rebuild_times, bare_times, strict=True)]
    figures = {"bare_s": round(median(bare_times), 1), "rebuild_s": round(median(rebuild_times), 1),
               "ratio": round(median(ratios), 3)}
    report(figures, args, f"sendmail 8.17 on i686-test: bare {figures['bare_s']} s, rebuild {figures['rebuild_s']} s,"
                          f" ratio {figures['ratio']} (target <= 1.02)")
    return figures


if __name__ == "__main__":
    main()
