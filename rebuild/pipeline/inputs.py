"""A build resolved once: ``resolve`` turns (recipe, target, options, settings) into a frozen ``BuildInputs``
(the SRPM located and hashed, the target's pin, the build key and what it was computed from). ``build``
runs the phases over it; the manifest's inputs and the index entry come from it; ``build_many`` and the
reproducibility check take the same objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.files import sha256_file
from rebuild.log import Log
from rebuild.pipeline import buildindex
from rebuild.pipeline.fetch import locate_srpm
from rebuild.pipeline.steps import TOPDIR
from rebuild.roots.pins import Pin
from rebuild.settings import Settings
from rebuild.systems.store import Cache

HOSTNAME = "rebuild.localdomain"


@dataclass(frozen=True)
class Variant:
    """What a build's surroundings are: the reproducibility check's second build changes each."""

    hostname: str = HOSTNAME
    tz: str = "UTC"
    tree: str = TOPDIR
    run_checks: bool = True
    #: a result folder kept for the user (the second build's is compared, then removed: never announced)
    kept: bool = True


# another host name, a clock 14 hours ahead of UTC (a POSIX TZ string needs no zoneinfo in the root),
# another build path; the build time differs by itself
SECOND_BUILD = Variant(hostname="second.reproducible.invalid", tz="RBT-14", tree="/rebuild/second/tree",
                       run_checks=False, kept=False)


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked of every build of a command (the command line's flags)."""

    out_dir: Path
    skip_deps_check: bool = False
    force: bool = False
    #: rpm 4.14 and later: the build time from the spec's %changelog, file times clamped to it
    source_date_epoch: bool = True
    variant: Variant = Variant()


@dataclass(frozen=True)
class Progress:
    """Where a build's output and phases go as it runs (a terminal, a status board); nothing by default."""

    echo: Callable[[bytes], None] | None = None
    on_phase: Callable[[str], None] | None = None


QUIET = Progress()


@dataclass(frozen=True)
class BuildRequest:
    """Several builds asked at once: their options, the settings, how many at a time, where output goes."""

    options: BuildOptions
    settings: Settings
    parallel: int = 1
    echo: Callable[[bytes], None] | None = None


@dataclass(frozen=True)
class BuildInputs:
    recipe: Recipe
    target: Target
    options: BuildOptions
    settings: Settings
    srpm: Path
    srpm_sha256: str
    pin: Pin | None      # None: no image made or pulled yet (the key then names an unpinned image)
    key: str
    key_inputs: dict = field(hash=False)
    #: how long locating (and perhaps downloading) the SRPM took: the build's "source" phase
    source_seconds: float = 0.0

    def repinned(self) -> BuildInputs:
        """The same inputs with the target's pin as it is now (the image was made or pulled meanwhile)."""
        pin, key, key_inputs = _key(self.recipe, self.target, self.options, self.settings, self.srpm_sha256)
        return replace(self, pin=pin, key=key, key_inputs=key_inputs)


def resolve(recipe: Recipe, target: Target, options: BuildOptions, settings: Settings,
            log: Log | None = None) -> BuildInputs:
    """The build of *recipe* on *target*, resolved: its SRPM (a local file, or a verified download), that
    file's sha256, the target's pin and the build key. Needs neither librpm nor the engine."""
    started = time.monotonic()
    srpm = locate_srpm(recipe, log, mirrors=settings.mirrors, cache=Cache(settings.cache))
    digest = sha256_file(srpm)
    pin, key, key_inputs = _key(recipe, target, options, settings, digest)
    return BuildInputs(recipe, target, options, settings, srpm, digest, pin, key, key_inputs,
                       round(time.monotonic() - started, 3))


def _key(recipe: Recipe, target: Target, options: BuildOptions, settings: Settings, digest: str):
    return buildindex.key_for(recipe, target, settings.cache, digest, skip_deps_check=options.skip_deps_check,
                              source_date_epoch=options.source_date_epoch)
