"""Getting the SRPM: local paths and file:// URLs now; verified HTTP downloads in fetch proper."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from rebuild.errors import UsageError
from rebuild.recipe import Recipe


def local_path(url: str) -> Path | None:
    """The path of a file:// URL or a plain path; None for http(s)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme:
        return Path(url)
    return None


def locate_srpm(recipe: Recipe) -> Path:
    """The first listed local copy of the recipe's SRPM that exists."""
    tried = []
    for url in recipe.source.urls:
        path = local_path(recipe.resolve(url))
        if path is None:
            tried.append(url)
            continue
        if path.is_file():
            return path
        tried.append(str(path))
    raise UsageError(
        f"{recipe.path}: source RPM {recipe.source.srpm} not found (tried {', '.join(tried)})"
    )
