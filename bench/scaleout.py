"""Scale-out costs, measured on real parts on loopback:

1. One matrix job's image step on a runner: the image pulled by digest from a registry against made there
   (testroot: debootstrap from Debian's mirror and `docker import`, as a fresh runner makes it; i686-test:
   solved, unpacked, imported and registered from its tree with every package already downloaded, the
   warm best case of making). The
   runner is a second Docker engine (its own dockerd and data root); the registry is Debian's
   docker-registry. Ratio pulled / made.
2. The overhead of archive copies (a remote engine's way) against bind mounts on the demo build:
   `rebuild build --force` with REBUILD_TRANSFER=archive and =bind on this host's engine, in alternating
   pairs. Ratio archive / bind.

    .venv/bin/python bench/scaleout.py [--runs N]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import REBUILD, make_srpm, median, options, report, testroot, timed, workdir, write_recipe

from rebuild.cli.build import EXAMPLE
from rebuild.config.target import SHIPPED
from tests.engines import Registry, SecondEngine


def run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {proc.stderr[-1500:]}")
    return proc


def clone_cache(src: Path, dest: Path, names: list[str]) -> None:
    """A runner's cache with the downloads of *src* (hard links) and none of its pins."""
    for name in names:
        if (src / name).exists():
            subprocess.run(["cp", "-al", str(src / name), str(dest / name)], check=True)
    for pin in dest.glob("images/*/*/pin.json"):
        pin.unlink()


def image_step(target: str, make_args: list[str], registry: Registry, engine: SecondEngine, tmp: Path,
               runs: int, home_env: dict) -> dict:
    cache = Path(os.environ.get("REBUILD_CACHE", Path.home() / ".cache" / "rebuild"))
    ref = run([*REBUILD, "image", target, *make_args, "--push", f"{registry.address}/bench/{target}"],
              home_env).stdout.split()[-1]
    made, pulled = [], []
    for i in range(runs):
        runner = tmp / f"runner-{target}-{i}"
        runner.mkdir()
        clone_cache(cache, runner, ["images", "srpms", "headers"])
        env = {**home_env, "DOCKER_HOST": engine.host, "REBUILD_CACHE": str(runner)}
        for side in (("made", "pulled") if i % 2 == 0 else ("pulled", "made")):
            for image in engine.docker("images", "-q").stdout.split():
                engine.docker("rmi", "-f", image)
            start = time.perf_counter()
            if side == "made":
                run([*REBUILD, "image", target, "--force", *make_args], env)
                made.append(time.perf_counter() - start)
            else:
                run([*REBUILD, "image", target, "--pull", ref], env)
                pulled.append(time.perf_counter() - start)
        shutil.rmtree(runner, ignore_errors=True)
    # the tag the push made on this engine goes with the registry
    tags = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{registry.address}/bench/{target}"],
                          capture_output=True, text=True).stdout.split()
    if tags:
        subprocess.run(["docker", "rmi", *tags], capture_output=True)
    print(f"{target}: made {[round(t, 2) for t in made]} pulled {[round(t, 2) for t in pulled]}", file=sys.stderr)
    return {"target": target, "made_s": round(median(made), 2), "pulled_s": round(median(pulled), 2),
            "ratio": round(median(pulled) / median(made), 3)}


def transfer(runs: int, tmp: Path) -> dict:
    demo_src = EXAMPLE
    srpm = make_srpm(demo_src / "hello.spec", demo_src, tmp / "demo")
    recipe = write_recipe(tmp, srpm, "hello", 'spec:\n  macros:\n    errata: "73"\n')
    times: dict[str, list[float]] = {"bind": [], "archive": []}
    for mode in ("bind", "archive"):  # warm-up
        timed([*REBUILD, "-q", "build", str(recipe), "--out", str(tmp / "out"), "--force"],
              env={**os.environ, "REBUILD_TRANSFER": mode})
    for i in range(runs):
        for mode in (("bind", "archive") if i % 2 == 0 else ("archive", "bind")):
            times[mode].append(timed([*REBUILD, "-q", "build", str(recipe), "--out", str(tmp / "out"), "--force"],
                                     env={**os.environ, "REBUILD_TRANSFER": mode}))
    print(f"demo: bind {[round(t, 2) for t in times['bind']]} archive {[round(t, 2) for t in times['archive']]}",
          file=sys.stderr)
    overheads = [a - b for a, b in zip(times["archive"], times["bind"], strict=False)]
    return {"bind_s": round(median(times["bind"]), 3), "archive_s": round(median(times["archive"]), 3),
            "overhead_s": round(median(overheads), 3),
            "ratio": round(median([a / b for a, b in zip(times["archive"], times["bind"], strict=False)]), 3)}


def i686_tree() -> Path | None:
    found = sorted(Path.home().glob(".cache/rebuild-tests/i686-tree-*/DONE"))
    return found[-1].parent if found else None


def main() -> None:
    args = options(runs=3)
    testroot()
    tmp = workdir()
    figures: dict = {"cores": os.cpu_count()}
    try:
        figures["transfer"] = transfer(max(args.runs, 5), tmp)
        with Registry(tmp / "registry") as registry, SecondEngine(tmp / "engine") as engine:
            figures["images"] = [image_step("testroot", [], registry, engine, tmp, args.runs, {})]
            tree = i686_tree()
            if tree is not None:
                home = tmp / "home"
                shutil.copytree(SHIPPED / "i686-test", home / "containers" / "i686-test")
                figures["images"].append(image_step(
                    "i686-test", ["--mirror", str(tree / "os"), "--updates", str(tree / "updates")], registry,
                    engine, tmp, args.runs, {"REBUILD_HOME": str(home)}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t = figures["transfer"]
    lines = [f"demo build, bind mounts {t['bind_s']} s, archives {t['archive_s']} s: overhead {t['overhead_s']} s,"
             f" ratio {t['ratio']} (median of alternating pairs)"]
    for image in figures["images"]:
        lines.append(f"{image['target']} image step on a runner: made {image['made_s']} s, pulled by digest"
                     f" {image['pulled_s']} s: ratio {image['ratio']}")
    report(figures, args, *lines, f"({figures['cores']} cores)")


if __name__ == "__main__":
    main()
