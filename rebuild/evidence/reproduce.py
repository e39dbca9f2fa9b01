"""``rebuild build --check-reproducible``: the recipe built a second time in a fresh container with another
host name, time zone, build path and build time, and the two results compared package by package with
the rpmdiff comparison (header tags, each payload file's digest, size, mode, owner and link target).

Verdicts: ``reproducible`` (nothing differs); ``payload-reproducible`` (only the header's build time and
host differ, on an rpm older than 4.14, which cannot take them from SOURCE_DATE_EPOCH); ``differs``.
The verdict and the differences go into the first result's manifest.json.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rebuild.evidence import rpmdiff
from rebuild.log import Log, format_table
from rebuild.pipeline import buildindex
from rebuild.pipeline.build import BuildResult, build
from rebuild.pipeline.inputs import SECOND_BUILD, BuildInputs
from rebuild.pipeline.result import ResultDir
from rebuild.pipeline.tools import knows_source_date_epoch
from rebuild.systems.engine import Engine


@dataclass(frozen=True)
class Reproducibility:
    verdict: str                 # reproducible, payload-reproducible, differs
    rpm_version: str | None
    packages: int
    rows: tuple[tuple[str, str, str, str, str], ...]   # what differs (rpmdiff.diff_rows)
    note: str

    @property
    def ok(self) -> bool:
        return self.verdict != "differs"

    def table(self) -> str:
        if not self.rows:
            return ""
        return format_table([("PACKAGE", "WHAT", "FILE OR TAG", "FIRST", "SECOND"), *self.rows])

    def record(self) -> dict:
        return {"verdict": self.verdict, "checked": datetime.now(UTC).isoformat(timespec="seconds"),
                "rpm_version": self.rpm_version, "packages": self.packages, "note": self.note,
                "second_build": {"hostname": SECOND_BUILD.hostname, "tz": SECOND_BUILD.tz, "tree": SECOND_BUILD.tree},
                "differences": [dict(zip(("package", "what", "item", "first", "second"), row, strict=False)) for row in self.rows]}


def verdict(diffs: list[rpmdiff.PackageDiff], only_a: list[str], only_b: list[str],
            rpm_version: str | None) -> Reproducibility:
    rows = tuple(rpmdiff.diff_rows(diffs, only_a, only_b))
    packages = len(diffs) + len(only_a) + len(only_b)
    if not rows:
        return Reproducibility("reproducible", rpm_version, packages, rows, "every package is the same")
    build_tags_only = not (only_a or only_b) and all(d.only_build_tags() for d in diffs)
    if build_tags_only and not knows_source_date_epoch(rpm_version):
        return Reproducibility(
            "payload-reproducible", rpm_version, packages, rows,
            f"every payload file and dependency is the same; rpm {rpm_version or '(unknown)'} writes the build time"
            " and host into the header and cannot take them from SOURCE_DATE_EPOCH (rpm 4.14 and later can)")
    return Reproducibility("differs", rpm_version, packages, rows, f"{len(rows)} differences")


def _later_than(finished: str | None) -> None:
    """Wait until the clock's second is past the first build's end, so the second build's time differs
    (rpm records it in whole seconds; a small package builds in under one)."""
    if not finished:
        return
    end = datetime.fromisoformat(finished).timestamp() + 1.0  # recorded to the second: round up
    wait = end + 1.0 - time.time()
    if 0 < wait <= 3:
        time.sleep(wait)


def check_reproducible(first: BuildResult, inputs: BuildInputs, engine: Engine, log: Log) -> Reproducibility:
    """Build *inputs* again under SECOND_BUILD (forced, in a scratch folder), compare with *first*, record the
    verdict in its manifest."""
    _later_than(ResultDir(first.directory).read().finished)
    scratch = Path(tempfile.mkdtemp(prefix=".reproduce-", dir=first.directory.parent))
    try:
        log.info(f"second build of {inputs.recipe.name} (host {SECOND_BUILD.hostname}, TZ {SECOND_BUILD.tz},"
                 f" tree {SECOND_BUILD.tree}) to check reproducibility")
        options = replace(inputs.options, out_dir=scratch, force=True, variant=SECOND_BUILD)
        second = build(replace(inputs, options=options), engine, log)
        pairs, only_a, only_b = rpmdiff.pair(first.directory, second.directory)
        diffs = [rpmdiff.compare(rpmdiff.read_package(a), rpmdiff.read_package(b)) for a, b in pairs]
        result_dir = ResultDir(first.directory)
        manifest = result_dir.read()
        report = verdict(diffs, only_a, only_b, manifest.target.rpm_version if manifest.target else None)
        buildindex.rewrite(result_dir, replace(manifest, reproducibility=report.record()))
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
