"""Image pins: ``<cache>/images/<target>/pin.json`` records the image a target's builds must use.

A pin holds the image ID, the definition it was made from (``Target.image_key``), what
the root was made from (the rootfs tarball's sha256, or the resolved package list's), the
image's content identity (``dockerimages.content_id``: the same on every host that holds the
image; build keys use it) and, once pushed or pulled, its registry reference by digest. Builds
refuse an image that does not match its pin.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rebuild.config.target import Target
from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.files import atomic_write, read_json
from rebuild.settings import Settings
from rebuild.systems.store import images_dir


@dataclass(frozen=True)
class Pin:
    target: str
    tag: str
    image_id: str
    image_key: str  # Target.image_key the image was made from
    made_from: str  # sha256 of the rootfs tarball, or of the resolved package list (rpmtree)
    content_id: str | None = None  # the image's content identity, the same on every engine
    registry: str | None = None    # REPOSITORY@sha256:... it was pushed to or pulled from

    @property
    def identity(self) -> str:
        """What build keys name the image by: its content, else (a pin from before content identity) its ID."""
        return self.content_id or self.image_id


def image_dir(target: Target, cache: Path | None = None) -> Path:
    """``<cache>/images/<target>/<first 12 digits of its image key>/``: one folder per definition, so two
    project folders defining a target of the same name keep their own pins, roots and locks."""
    if cache is None:
        cache = Settings.from_env().cache
    return images_dir(cache) / target.name / target.image_key[:12]


def read_pin(target: Target, cache: Path | None = None) -> Pin | None:
    """The target's pin when it was made from the current image definition, else None."""
    path = image_dir(target, cache) / "pin.json"
    try:
        pin = Pin(**read_json(path, "pin", max_bytes=1 << 20))
    except (UsageError, TypeError):
        return None
    return pin if pin.image_key == target.image_key else None


def pin_image(target: Target, engine, image_id: str, made_from: str, cache: Path | None = None,
              registry: str | None = None) -> tuple[Pin, Path]:
    """Pin *image_id* for *target* with its content identity; return the pin and where it is."""
    info = engine.inspect_image(image_id)
    pin = Pin(target.name, target.tag, image_id, target.image_key, made_from,
              content_id=info.content_id if info else None, registry=registry)
    return pin, write_pin(pin, target, cache)


def write_pin(pin: Pin, target: Target, cache: Path | None = None) -> Path:
    path = image_dir(target, cache) / "pin.json"
    write_json(path, asdict(pin))
    return path


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def pinned(target: Target, cache: Path | None = None) -> Pin:
    """The target's pin, or EnvironmentProblem saying what to run."""
    fix = f"run `rebuild image {target.name}`"
    if not (image_dir(target, cache) / "pin.json").exists():
        raise EnvironmentProblem(f"target {target.name}: no image has been made yet; {fix}")
    pin = read_pin(target, cache)
    if pin is None:
        raise EnvironmentProblem(f"target {target.name}: its image definition changed since the image was made; {fix}")
    return pin


def check_image(target: Target, engine, cache: Path | None = None, log=None) -> str:
    """The pinned image ID of *target*, or EnvironmentProblem saying what to run.

    The pin names an image, not a tag: where the tag was re-made by another user or project folder on the
    same engine, the pinned image is used by its ID while the engine has it; where it is gone and the
    tag's image was made from the same definition, that image is pinned instead, and *log* says so."""
    pin = pinned(target, cache)
    fix = f"run `rebuild image {target.name}`"
    if engine.inspect_image(pin.image_id) is not None:
        return pin.image_id
    current = engine.inspect_image(target.tag)
    if current is None:
        raise EnvironmentProblem(f"target {target.name}: image {target.tag} is not in the engine; {fix}")
    if current.labels.get("org.rebuild.definition") != target.image_key:
        raise EnvironmentProblem(
            f"target {target.name}: the pinned image {pin.image_id[:19]} is gone and {target.tag} was made from"
            f" another definition; {fix}"
        )
    repinned, _ = pin_image(target, engine, current.id, pin.made_from, cache, pin.registry)
    if log is not None:
        log.warn(f"target {target.name}: the pinned image {pin.image_id[:19]} is gone; {target.tag} was re-made"
                 f" elsewhere from the same definition, pinned it ({current.id[:19]})")
    return repinned.image_id
