"""Helpers shared by the benchmarks: the image, SRPMs, recipes, timing."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rebuild.config.target import load_target  # noqa: E402
from rebuild.log import Log  # noqa: E402
from rebuild.roots.images import make_image  # noqa: E402
from rebuild.systems.dockerengine import DockerEngine  # noqa: E402

REBUILD = [sys.executable, "-m", "rebuild"]


def testroot():
    target = load_target("testroot")
    pin = make_image(target, DockerEngine(), Log(quiet=True))
    return target, pin.image_id


def compile_spec(name: str, files: int, functions: int = 300) -> str:
    """A spec whose %build generates and compiles *files* C files (about 0.25 s each here)."""
    return textwrap.dedent(
        f"""\
        Summary: generated compile load
        Name: {name}
        Version: 1
        Release: 1
        License: MIT

        %description
        Generated C code for benchmarks.

        %prep

        %build
        i=0
        while [ $i -lt {files} ]; do
          awk -v i=$i 'BEGIN {{ for (f = 0; f < {functions}; f++)
            printf "int f%d_%d(int x){{int s=0;for(int k=0;k<x;k++){{s+=k*%d^(s>>3);}}return s;}}\\n", i, f, f }}' > gen$i.c
          gcc -O2 -c gen$i.c
          i=$((i + 1))
        done
        gcc -shared -o lib{name}.so gen*.o

        %install
        mkdir -p %{{buildroot}}/usr/lib
        install -m 0755 lib{name}.so %{{buildroot}}/usr/lib/

        %files
        /usr/lib/lib{name}.so
        """
    )


def make_srpm(spec: Path, sources: Path, out: Path) -> Path:
    top = out / "top"
    subprocess.run(
        ["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {top}", "--define", f"_sourcedir {sources}", str(spec)],
        check=True, capture_output=True,
    )
    (srpm,) = (top / "SRPMS").glob("*.src.rpm")
    return srpm


def write_recipe(directory: Path, srpm: Path, name: str, extra: str = "") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nsource:\n  srpm: {srpm.name}\n  urls: ['{srpm.as_uri()}']\ntarget: testroot\n" + extra
    )
    return path


def timed(argv: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rebuild-bench-"))


def options(runs: int, rounds: int | None = None) -> argparse.Namespace:
    """The flags every benchmark takes: --runs, --json (and --rounds where it pairs rounds)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=runs, help="runs (per round, with rounds)")
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds, help="rounds, each ending with the baseline")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    return parser.parse_args()


def report(figures, args: argparse.Namespace, *lines: str) -> None:
    """The figures as one JSON line (for run_all.py) with --json, else the lines for a person."""
    print(json.dumps(figures) if args.json else "\n".join(lines))


def installed_rebuild(tmp: Path) -> list[str]:
    """rebuild as `pipx install` gives it: a wheel of this checkout installed with its dependencies (no extras)
    into a fresh virtualenv of Debian's own python3 (the checkout's .venv is editable, carries the test
    extras and may run another interpreter). Its `rebuild` command."""
    from tests.conftest import copy_checkout

    source = copy_checkout(tmp / "installed-source")
    venv = tmp / "installed"
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pip could not install the checkout into {venv}: {proc.stderr[-1500:]}")
    shutil.rmtree(source)
    return [str(venv / "bin" / "rebuild")]


def i686_image() -> str:
    """The shipped i686-test target made from the i686 test tree (tests/i686tree.py), as `make demo-sendmail`
    makes it; its image ID."""
    from tests.i686tree import build_tree

    tree = build_tree(log=lambda message: print(message, file=sys.stderr))
    proc = subprocess.run([*REBUILD, "-q", "image", "i686-test", "--mirror", str(tree / "os"), "--updates",
                           str(tree / "updates")], cwd=ROOT, capture_output=True, text=True, check=True)
    return proc.stdout.split()[1]
