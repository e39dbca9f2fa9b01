"""Floors manifests: the minimum version of each package a build root must have.

```yaml
floors:
  openssl-devel: "0.9.6b-32.7"      # [epoch:]version[-release], compared as rpm does
```
Parsed once, when the recipe that names it loads (a bad manifest fails before any container).
A manifest in the plain shape above (one ``floors:`` mapping of quoted or digit-led plain versions,
comments, nothing YAML could read as anything but a string) is read by a line scanner without loading
the YAML library (about 20 ms for 1,000 floors); anything else, errors included, goes through YAML.
"""

from __future__ import annotations

import re
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
    entries = _plain_entries(raw)
    plain = entries is not None  # the scanner took only names of [A-Za-z0-9._+-]
    if entries is None:
        entries = _yaml_entries(raw, path)
    out = []
    for name, value, line in entries:
        if not plain and (not name or any(ch.isspace() or not ch.isprintable() for ch in name)):
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


_COMMENT = r"(?:[ ]+#.*)?"
_BLANK = re.compile(r"[ ]*(?:#.*)?")
_TOP = re.compile(r"floors:" + _COMMENT)
# a name YAML reads as itself; a version in quotes (no escapes) or plain and led by a digit, which YAML
# without int and float resolvers reads as a string unless it looks like a date
_ENTRY = re.compile(r"(?P<indent>[ ]+)(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]*):[ ]+"
                    r"(?:\"(?P<dq>[A-Za-z0-9._+~^:-]*)\"|'(?P<sq>[A-Za-z0-9._+~^:-]*)'|(?P<plain>[0-9][A-Za-z0-9._+~^:-]*))"
                    + _COMMENT)
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")


def _plain_entries(raw: bytes) -> list[tuple[str, str, int]] | None:
    """The entries of a manifest in the plain shape, or None for YAML to read (and judge) it."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "\r" in text or "\t" in text:
        return None
    entries, seen, indent, top = [], set(), None, False
    for number, line in enumerate(text.split("\n"), 1):
        if _BLANK.fullmatch(line):
            continue
        if not top:
            if not _TOP.fullmatch(line):
                return None
            top = True
            continue
        match = _ENTRY.fullmatch(line)
        if not match or (indent is not None and match["indent"] != indent) or match["name"] in seen:
            return None
        indent = match["indent"]
        value = match["dq"] if match["dq"] is not None else match["sq"] if match["sq"] is not None else match["plain"]
        if match["plain"] is not None and _DATE.match(value):
            return None
        seen.add(match["name"])
        entries.append((match["name"], value, number))
    return entries or None
