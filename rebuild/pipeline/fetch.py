"""A recipe's source RPM: where it comes from (a local file, or URLs with mirrors first), the sha256 it
must have (``--sha256``, the recipe, or its lock file: trust on first use with ``--lock``), fetched
through the verified store (``rebuild.systems.store``).

Exit codes: 1 verification failed (digest, not an RPM, wrong package, signature),
2 bad input (no pin without --lock, bad URL), 3 no URL could be downloaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rebuild.errors import CheckFailed, UsageError
from rebuild.files import atomic_write, read_json
from rebuild.log import Log
from rebuild.systems.download import FetchOptions
from rebuild.systems.store import Cache, Fetched, fetch_urls
from rebuild.systems.urls import local_path, redact, with_mirrors

if TYPE_CHECKING:
    from rebuild.config.recipe import Recipe

STALE_PART = 24 * 3600  # seconds after which a .part of a process that may still run is removed


# ---------------------------------------------------------------- lock files


def lock_path(recipe: Recipe) -> Path:
    return recipe.path.with_suffix(".lock")


def read_lock(recipe: Recipe) -> str | None:
    path = lock_path(recipe)
    try:
        data = read_json(path, "lock file", missing_ok=True)
        if data is None:
            return None
        entry = data.get("srpms", {}).get(recipe.source.srpm)
    except UsageError as exc:
        raise UsageError(f"{exc.message}; delete it and fetch again with --lock") from None
    except AttributeError:
        raise UsageError(f"{path}: unreadable lock file; delete it and fetch again with --lock") from None
    if entry is None:
        return None
    sha = entry.get("sha256", "") if isinstance(entry, dict) else ""
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise UsageError(f"{path}: bad sha256 for {recipe.source.srpm}; delete the entry and fetch again with --lock")
    return sha


def write_lock(recipe: Recipe, sha256: str, url: str) -> Path:
    path = lock_path(recipe)
    try:
        data = read_json(path, "lock file", missing_ok=True)
        if not isinstance(data, dict):
            data = {}
    except UsageError:
        data = {}
    data.setdefault("srpms", {})[recipe.source.srpm] = {
        "sha256": sha256,
        "url": redact(url),
        "locked": datetime.now(UTC).isoformat(timespec="seconds"),
        "how": "trust on first use",
    }
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def pin_for(recipe: Recipe, override: str | None = None) -> str | None:
    """The sha256 a recipe's SRPM must have: --sha256, the recipe, or its lock file (which must agree)."""
    lock = read_lock(recipe)
    pins = {p for p in (override, recipe.source.sha256, lock) if p}
    if len(pins) > 1:
        raise CheckFailed(
            f"{recipe.path}: conflicting sha256 pins for {recipe.source.srpm}"
            f" (--sha256 {override}, recipe {recipe.source.sha256}, lock {lock}); resolve them before fetching"
        )
    return pins.pop() if pins else None


@dataclass(frozen=True)
class SourcePlan:
    """Where a recipe's SRPM comes from, resolved once: a local file, or URLs (mirrors first) and a pin."""

    local: Path | None
    urls: tuple[str, ...]
    pin: str | None


def plan_source(recipe: Recipe, mirrors=(), sha256: str | None = None) -> SourcePlan:
    resolved = [recipe.resolve(u) for u in recipe.source.urls]
    for url in resolved:
        path = local_path(url)
        if path is not None and path.is_file():
            return SourcePlan(path, tuple(resolved), pin_for(recipe, sha256))
    return SourcePlan(None, tuple(with_mirrors(resolved, mirrors)), pin_for(recipe, sha256))


def fetch_recipe(recipe: Recipe, *, sha256: str | None = None, lock: bool = False, mirrors=(),
                 options: FetchOptions = FetchOptions(), log: Log | None = None, cache: Cache | None = None,
                 plan: SourcePlan | None = None) -> Fetched:
    """Fetch a recipe's SRPM, verified against its pin; ``lock`` records a first-seen digest."""
    log = log or Log(quiet=True)
    plan = plan or plan_source(recipe, mirrors, sha256)
    fetched = fetch_urls(
        list(plan.urls),
        filename=recipe.source.srpm,
        sha256=plan.pin,
        expected_nvr=recipe.source.srpm[: -len(".src.rpm")],
        gpg_keys=recipe.source.gpg_keys,
        allow_unpinned=lock,
        options=options,
        cache=cache,
        log=log,
    )
    if plan.pin is None and lock:
        path = write_lock(recipe, fetched.sha256, fetched.url or "")
        log.warn(
            f"TRUST ON FIRST USE: recorded sha256 {fetched.sha256} for {recipe.source.srpm}"
            f" from {redact(fetched.url or '')} in {path}. Check this digest out of band (a second mirror,"
            " the vendor's errata notice) before trusting builds from it."
        )
    return fetched


def locate_srpm(recipe: Recipe, log: Log | None = None, *, mirrors=(), cache: Cache | None = None) -> Path:
    """The build's SRPM: a local path or file:// URL as given, else the verified cached download."""
    plan = plan_source(recipe, mirrors)
    if plan.local is not None:
        return plan.local
    remote = [u for u in plan.urls if local_path(u) is None]
    if not remote:
        tried = ", ".join(str(local_path(u)) for u in plan.urls)
        raise UsageError(f"{recipe.path}: source RPM {recipe.source.srpm} not found (tried {tried})")
    if plan.pin is None:
        raise UsageError(
            f"{recipe.path}: {recipe.source.srpm} has no sha256 pin; builds use only pinned SRPMs:"
            f" run `rebuild fetch {recipe.path} --lock` (trust on first use) or add source.sha256"
        )
    return fetch_recipe(recipe, log=log, cache=cache, plan=plan).path
