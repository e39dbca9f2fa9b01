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
from rebuild.errors import EnvironmentProblem
from rebuild.files import atomic_write


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
    if cache is None:
        from rebuild.settings import Settings

        cache = Settings.from_env().cache
    return cache / "images" / target.name


def read_pin(target: Target, cache: Path | None = None) -> Pin | None:
    """The target's pin when it was made from the current image definition, else None."""
    path = image_dir(target, cache) / "pin.json"
    try:
        pin = Pin(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return pin if pin.image_key == target.image_key else None


def pin_image(target: Target, engine, image_id: str, made_from: str, cache: Path | None = None,
              registry: str | None = None) -> tuple[Pin, Path]:
    """Pin *image_id* for *target* with its content identity; return the pin and where it is."""
    info = engine.inspect_image(image_id)
    pin = Pin(target.name, target.image.tag, image_id, target.image_key, made_from,
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


def check_image(target: Target, engine, cache: Path | None = None) -> str:
    """The pinned image ID of *target*, or EnvironmentProblem saying what to run."""
    pin = pinned(target, cache)
    fix = f"run `rebuild image {target.name}`"
    current = engine.image_id(target.image.tag)
    if current is None:
        raise EnvironmentProblem(f"target {target.name}: image {target.image.tag} is not in the engine; {fix}")
    if current != pin.image_id:
        raise EnvironmentProblem(
            f"target {target.name}: {target.image.tag} is {current[:19]}, not the pinned {pin.image_id[:19]}; {fix}"
        )
    return current
