"""Floors manifests: the minimum version of each package a build root must have.

```yaml
floors:
  openssl-devel: "0.9.6b-32.7"      # [epoch:]version[-release], compared as rpm does
```
Parsed once, by the YAML reader every config file goes through, when the recipe that names it loads
(a bad manifest fails before any container).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rebuild.config.yamlfile import check_keys, expect_mapping, parse_yaml, read_yaml_bytes
from rebuild.errors import ConfigError
from rebuild.files import sha256_bytes
from rebuild.systems.evr import EVR, parse


@dataclass(frozen=True)
class Floor:
    name: str
    minimum: EVR
    line: int


@dataclass(frozen=True)
class FloorsManifest:
    path: Path
    sha256: str
    floors: tuple[Floor, ...]


def load_floors(path: Path) -> list[Floor]:
    """The floors of the manifest at *path*; every problem is one line with the file and line number."""
    return list(load_manifest(path).floors)


def load_manifest(path: Path) -> FloorsManifest:
    path = Path(path)
    raw = read_yaml_bytes(path, "floors manifest")
    out = []
    for name, value, line in _yaml_entries(raw, path):
        if not name or any(ch.isspace() or not ch.isprintable() for ch in name):
            raise ConfigError(f"{path}:{line}: package name {name!r} may not contain spaces or control characters")
        if not isinstance(value, str):
            raise ConfigError(f"{path}:{line}: {name}: the floor must be a version string like \"0.9.6b-32.7\"")
        try:
            minimum = parse(value)
        except ValueError as exc:
            raise ConfigError(f"{path}:{line}: {name}: bad version {value!r}: {exc}") from None
        out.append(Floor(name, minimum, line))
    return FloorsManifest(path.resolve(), sha256_bytes(raw), tuple(out))


def _yaml_entries(raw: bytes, path: Path) -> list[tuple[str, object, int]]:
    data = expect_mapping(parse_yaml(raw, path, "floors manifest"), path, "a floors manifest", 1)
    check_keys(data, ("floors",), path, "the floors manifest", required=("floors",))
    floors = expect_mapping(data["floors"], path, "floors", data.line_of("floors"))
    return [(name, value, floors.line_of(name)) for name, value in floors.items()]
