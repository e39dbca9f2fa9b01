"""Target images through a registry: ``rebuild image T --push REPOSITORY`` pushes the pinned image and
records its digest in the pin; ``--pull REPOSITORY@sha256:...`` (or ``image.registry`` in the target)
takes the image from there instead of making it.

A pulled image must carry the label of the definition it was made from (``Target.image_key``), so an
image of another target, or of an older definition of this one, is refused; the engine checks every
blob against the digest. A tree-made image holds its lock (``lock.LOCK_IN_IMAGE``), checked against its
label and written where a made image's lock would be: layers, SBOMs and the build key then see the same
root on every host.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from rebuild.config.target import Target
from rebuild.errors import CheckFailed, UsageError
from rebuild.log import Log
from rebuild.roots.lock import LOCK_IN_IMAGE, RootLock, lock_path, write_lock
from rebuild.roots.pins import Pin, check_image, image_dir, pin_image, read_pin, write_pin
from rebuild.systems.dockerimages import parse_reference


def split_repository(text: str) -> tuple[str, str | None]:
    """REPOSITORY[:TAG] (the registry host may carry a port: 127.0.0.1:5000/rebuild/rh73:v1)."""
    head, _, last = text.rpartition("/")
    if ":" in last:
        name, _, tag = last.rpartition(":")
        return f"{head}/{name}" if head else name, tag
    return text, None


def push_image(target: Target, engine, repository: str, log: Log, cache: Path | None = None) -> Pin:
    """Push the target's pinned image to REPOSITORY[:TAG] (default tag: <target>-<content id>); pin the digest."""
    image_id = check_image(target, engine, cache)
    pin = read_pin(target, cache)
    repo, tag = split_repository(repository)
    tag = tag or f"{target.name}-{(pin.content_id or image_id).split(':')[-1][:16]}"
    with log.step(f"push {target.tag} to {repo}:{tag}"):
        digest = engine.push(image_id, repo, tag)
    pin = replace(pin, registry=f"{repo}@{digest}")
    write_pin(pin, target, cache)
    log.info(f"pushed {repo}:{tag} as {pin.registry}")
    return pin


def pull_image(target: Target, engine, reference: str, log: Log, cache: Path | None = None) -> Pin:
    """Pull REPOSITORY@sha256:... for *target*, check it was made from this definition, tag and pin it."""
    ref = parse_reference(reference)
    pin = read_pin(target, cache)
    if pin and pin.registry == ref.pinned and engine.image_id(target.tag) == pin.image_id:
        log.info(f"image {target.tag} is up to date ({ref.pinned})")
        return pin
    with log.step(f"pull {ref.pinned}"):
        info = engine.pull(ref)
    made_for = info.labels.get("org.rebuild.definition")
    if made_for != target.image_key:
        raise CheckFailed(
            f"{ref.pinned} was made from {'another definition' if made_for else 'no rebuild definition'} than target"
            f" {target.name}'s ({(made_for or '-')[:12]} vs {target.image_key[:12]}); push the image made from this"
            f" target.yaml, or make it: rebuild image {target.name}")
    if target.image.method == "rpmtree":
        made_from = _take_lock(target, engine, info, ref.pinned, cache)
    else:
        made_from = info.labels.get("org.rebuild.rootfs") or f"registry:{ref.pinned}"
    engine.tag(info.id, target.tag)
    pin, path = pin_image(target, engine, info.id, made_from, cache, registry=ref.pinned)
    log.info(f"image {target.tag} is {info.id[:19]} from {ref.pinned} (pinned in {path})")
    return pin


def _take_lock(target: Target, engine, info, where: str, cache: Path | None) -> str:
    """The lock inside a tree-made image, checked against its label, written as the target's lock."""
    text = engine.read_file(info.id, "/" + LOCK_IN_IMAGE)
    if text is None:
        raise UsageError(f"{where} holds no /{LOCK_IN_IMAGE}: it was made by a rebuild without locks in images;"
                         f" make it again with rebuild image {target.name} --force and push it")
    lock = RootLock.from_json(text.decode("utf-8", "replace"), f"{where}:/{LOCK_IN_IMAGE}")
    if lock.sha256 != info.labels.get("org.rebuild.lock"):
        raise CheckFailed(f"{where}: its /{LOCK_IN_IMAGE} does not match its org.rebuild.lock label")
    write_lock(lock_path(image_dir(target, cache)), lock)
    return hashlib.sha256((target.image_key + lock.sha256).encode()).hexdigest()
