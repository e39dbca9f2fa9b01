"""`rebuild fetch` of a 256 MiB SRPM from a loopback server against the same work done by the shell the
way rebuild does it, overlapped: `curl -s URL | tee FILE | sha256sum` (download, write and digest at
once); bare curl for context (no digest); peak RSS; cached re-fetch. bench/fetch_floor.py gives the
floor of a minimal downloader that digests as it goes.

Targets: at least 1.0x the `curl | tee | sha256sum` pipeline; peak RSS under 100 MiB; a cached
re-fetch under 0.5 s.

    .venv/bin/python bench/fetch.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import REBUILD, median, options, report, workdir

SIZE = 256 << 20


def big_srpm(tmp: Path) -> Path:
    """An uncompressed SRPM carrying 256 MiB of random data."""
    src = tmp / "src"
    src.mkdir()
    (src / "blob.bin").write_bytes(os.urandom(SIZE))
    spec = src / "bigsrc.spec"
    spec.write_text("Name: bigsrc\nVersion: 1\nRelease: 1\nSummary: big\nLicense: MIT\nSource0: blob.bin\n"
                    "%description\nbig\n%files\n")
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {tmp / 'top'}", "--define", f"_sourcedir {src}",
                    "--define", "_source_payload w0.ufdio", str(spec)], check=True, capture_output=True)
    shutil.rmtree(src)
    return next((tmp / "top" / "SRPMS").glob("*.src.rpm"))


# A small wrapper process reports the child's peak RSS: measured from this (large) process, the
# child's pages before exec would count too.
_PEAK = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
)


def run_timed(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    out = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, env=env, check=True)
    seconds, peak, rc = out.stdout.split()
    assert rc == "0", argv
    return float(seconds), int(peak)


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """bench/fileserver.py serving *folder* on loopback; yields its URL. Its own process: a forked
    child's peak RSS would otherwise count this one's pages."""
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fileserver.py")), str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def main() -> dict:
    args = options(runs=5)
    tmp = workdir()
    try:
        srpm = big_srpm(tmp)
        with srpm.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        with file_server(srpm.parent) as base:
            url = f"{base}/{srpm.name}"
            ours, theirs, verified, rss = [], [], [], []
            pipeline = 'set -o pipefail; curl -sf "$2" | tee "$1" | sha256sum >/dev/null'
            cache = tmp / "cache"
            env = {**os.environ, "REBUILD_CACHE": str(cache)}
            for _ in range(args.runs):
                # each tool starts with the same files on disk: none of the others' downloads
                # (an extra 256 MiB file in the page cache slows whichever tool runs beside it)
                os.sync()
                theirs.append(run_timed(["curl", "-sf", "-o", str(tmp / "curl.out"), url])[0])
                (tmp / "curl.out").unlink()
                os.sync()
                verified.append(run_timed(["bash", "-c", pipeline, "bash", str(tmp / "curl.out"), url])[0])
                (tmp / "curl.out").unlink()
                shutil.rmtree(cache, ignore_errors=True)
                os.sync()
                t, peak = run_timed([*REBUILD, "-q", "fetch", url, "--sha256", digest], env)
                ours.append(t)
                rss.append(peak)
            cached = [run_timed([*REBUILD, "-q", "fetch", url, "--sha256", digest], env)[0] for _ in range(3)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("per run (s): rebuild", [round(x, 2) for x in ours], "curl", [round(x, 2) for x in theirs],
          "curl|tee|sha256sum", [round(x, 2) for x in verified], file=sys.stderr)
    mib = SIZE / (1 << 20)
    row = {
        "rebuild_mib_s": round(mib / median(ours), 1),
        "curl_mib_s": round(mib / median(theirs), 1),
        "ratio": round(median(theirs) / median(ours), 3),
        "pipeline_mib_s": round(mib / median(verified), 1),
        "ratio_same_work": round(median(verified) / median(ours), 3),
        "peak_rss_mib": round(max(rss) / 1024, 1),
        "cached_s": round(median(cached), 3),
    }
    report(row, args, f"fetch 256 MiB over loopback (whole processes, median of {args.runs}; {os.cpu_count()} cores):",
           f"  rebuild {row['rebuild_mib_s']} MiB/s; curl | tee | sha256sum {row['pipeline_mib_s']} MiB/s:"
           f" ratio {row['ratio_same_work']} (target >= 1.0)",
           f"  bare curl (no digest) {row['curl_mib_s']} MiB/s: ratio {row['ratio']} (context)",
           f"  rebuild peak RSS {row['peak_rss_mib']} MiB (target < 100); cached re-fetch {row['cached_s']} s (target < 0.5)")
    return row


if __name__ == "__main__":
    main()
