"""Where rebuild finds its data (containers/, specs/) and keeps its cache."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The folder holding ``containers/`` and ``specs/``: $REBUILD_HOME, else the checkout."""
    env = os.environ.get("REBUILD_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """$REBUILD_CACHE, else $XDG_CACHE_HOME/rebuild, else ~/.cache/rebuild."""
    env = os.environ.get("REBUILD_CACHE")
    if env:
        return Path(env).resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "rebuild"
