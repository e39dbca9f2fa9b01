"""Build targets (``containers/<name>/target.yaml``): the image and how to build in it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rebuild.config.yamlfile import check_keys, did_you_mean, expect_mapping, expect_str, expect_str_list, load_yaml
from rebuild.errors import ConfigError, UsageError
from rebuild.settings import Settings
from rebuild.systems.dockerimages import parse_reference
from rebuild.systems.urls import check_url

_METHODS = ("debootstrap", "rpmtree")
_PERSONALITIES = ("linux32", "linux64")
_BUILD_COMMANDS = ("rpmbuild", "rpm", "auto")


@dataclass(frozen=True)
class ImageSpec:
    """How the target's image is made and named."""

    tag: str
    method: str
    suite: str = ""
    mirror: str = ""   # debootstrap: the Debian mirror; rpmtree: the default release tree
    updates: str = ""  # rpmtree: the default updates tree
    include: tuple[str, ...] = ()
    packages: Path | None = None  # rpmtree: the package list file
    #: REPOSITORY@sha256:... to pull the image from instead of making it (not part of the image key:
    #: it says where the image is, not what it is made of)
    registry: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    directory: Path
    image: ImageSpec
    arch: str
    personality: str | None
    build_command: str
    user: str
    uid: int
    #: pass --nodeps to the build: the image's rpmdb does not list what is installed
    nodeps: bool
    #: sha256 of the definition file: part of the image pin and of the build cache key
    definition_sha256: str
    #: trees besides the image's own that build roots are solved from, as (origin, location, sha256 of its
    #: SHA256SUMS): a chain's repository (pipeline.chain). Part of the build key, not of the image.
    extra_trees: tuple[tuple[str, str, str], ...] = ()

    @property
    def image_key(self) -> str:
        """What the image is made from: a change here means the image must be made again."""
        import json

        made_of = {
            # fields left empty are left out: a field a newer rebuild adds does not change existing keys
            # the package list by file name (its content is below): the same definition in two folders is one
            "image": {k: v.name if isinstance(v, Path) else v for k, v in self.image.__dict__.items()
                      if (v not in ("", (), None) or k in ("suite", "mirror", "include", "packages"))
                      and k != "registry"},
            "user": self.user,
            "uid": self.uid,
            "personality": self.personality,
            "packages": hashlib.sha256(self.image.packages.read_bytes()).hexdigest()
            if self.image.packages and self.image.packages.is_file() else None,
        }
        return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        """The engine tag of this definition's image: ``image.tag`` with the first 12 digits of the image key,
        so two project folders (or users) whose definitions differ never move each other's tag."""
        repository, colon, version = self.image.tag.rpartition(":")
        if not colon or "/" in version:
            repository, version = self.image.tag, "latest"
        return f"{repository}:{version}-{self.image_key[:12]}"

    def wrap(self, argv: list[str]) -> list[str]:
        """Prefix *argv* with the personality wrapper, if the target has one."""
        return [self.personality, *argv] if self.personality else list(argv)


_TOP = ("description", "image", "arch", "personality", "build_command", "user", "uid", "nodeps")
_IMAGE = ("tag", "method", "suite", "mirror", "updates", "include", "packages", "registry")


#: the targets rebuild ships (package data): found where the project folder does not define one of that name
SHIPPED = Path(__file__).resolve().parent.parent / "targets"


def target_sources(home: Path | None = None) -> dict[str, Path]:
    """Every known target's definition file, by name: the project folder's ``containers/<name>/`` wins over
    a shipped target of the same name."""
    if home is None:
        home = Settings.from_env().home
    found: dict[str, Path] = {}
    for folder in (SHIPPED, home / "containers"):
        if folder.is_dir():
            found.update({p.parent.name: p for p in folder.glob("*/target.yaml")})
    return dict(sorted(found.items()))


def available_targets(home: Path | None = None) -> list[str]:
    return list(target_sources(home))


def load_target(name: str, home: Path | None = None) -> Target:
    """Load target *name*: the project folder's ``containers/<name>/target.yaml`` (*home*, default the
    settings'), else the shipped one; unknown names get a did-you-mean."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(f"target {name!r} is not a valid target name")
    sources = target_sources(home)
    path = sources.get(name)
    if path is None:
        known = list(sources)
        raise UsageError(
            f"unknown target {name!r}{did_you_mean(name, known)} (known: {', '.join(known) or 'none'};"
            f" a target is a folder containers/<name>/ with target.yaml in the project folder)"
        )
    data = expect_mapping(load_yaml(path, "target definition"), path, "a target", 1)
    check_keys(data, _TOP, path, "the target", required=("image", "arch", "build_command", "user"))
    img = expect_mapping(data["image"], path, "image", data.line_of("image"))
    check_keys(img, _IMAGE, path, "image", required=("tag", "method"))
    method = expect_str(img["method"], path, "image.method", img.line_of("method"))
    if method not in _METHODS:
        raise ConfigError(f"{path}:{img.line_of('method')}: image.method must be one of {', '.join(_METHODS)}")
    for key in ("mirror", "updates"):
        if img.get(key) is not None:
            problem = check_url(expect_str(img[key], path, f"image.{key}", img.line_of(key)))
            if problem:
                raise ConfigError(f"{path}:{img.line_of(key)}: image.{key}: {problem}")
    packages = None
    if img.get("packages") is not None:
        packages = path.parent / expect_str(img["packages"], path, "image.packages", img.line_of("packages"))
    registry = ""
    if img.get("registry") is not None:
        registry = expect_str(img["registry"], path, "image.registry", img.line_of("registry"))
        try:
            parse_reference(registry, "image.registry")
        except UsageError as exc:
            raise ConfigError(f"{path}:{img.line_of('registry')}: {exc.message}") from None
    personality = data.get("personality")
    if personality is not None and personality not in _PERSONALITIES:
        raise ConfigError(
            f"{path}:{data.line_of('personality')}: personality must be one of {', '.join(_PERSONALITIES)} or left out"
        )
    build_command = expect_str(data["build_command"], path, "build_command", data.line_of("build_command"))
    if build_command not in _BUILD_COMMANDS:
        raise ConfigError(f"{path}:{data.line_of('build_command')}: build_command must be rpmbuild, rpm or auto")
    uid_text = str(data.get("uid", "1000"))
    if not uid_text.isdigit() or int(uid_text) == 0:
        raise ConfigError(f"{path}:{data.line_of('uid')}: uid must be a positive number (builds never run as root)")
    user = expect_str(data["user"], path, "user", data.line_of("user"))
    if user == "root":
        raise ConfigError(f"{path}:{data.line_of('user')}: user must not be root; builds run as a plain user")
    return Target(
        name=name,
        directory=path.parent,
        image=ImageSpec(
            tag=expect_str(img["tag"], path, "image.tag", img.line_of("tag")),
            method=method,
            suite=str(img.get("suite") or ""),
            mirror=str(img.get("mirror") or ""),
            updates=str(img.get("updates") or ""),
            include=expect_str_list(img.get("include"), path, "image.include", img.line_of("include")),
            packages=packages,
            registry=registry,
        ),
        arch=expect_str(data["arch"], path, "arch", data.line_of("arch")),
        personality=personality,
        build_command=build_command,
        user=user,
        uid=int(uid_text),
        nodeps=_bool(data, "nodeps", path),
        definition_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def _bool(data, key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}:{data.line_of(key)}: {key} must be true or false")
    return value
