"""Line-aware YAML loading and the schema helpers every config file uses.

YAML is read once here; callers turn the result into frozen dataclasses.
Plain scalars stay strings (``1.10`` must not become the float ``1.1``: that
is a different RPM version), so callers convert numbers explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from rebuild.errors import ConfigError, UsageError
from rebuild.files import read_user_file

# a recipe, target or floors manifest of 1,000s of lines is well under this
MAX_YAML = 8 << 20


class Mapping(dict):
    """A dict that remembers where it and each of its keys stood."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class Sequence(list):
    line: int = 0
    item_lines: list


@cache
def _loader_class():
    """The loader, made on first use."""
    import yaml

    # libyaml's parser when present (a 1,000-floor manifest loads several times faster)
    class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    # Keep numbers as text: versions and macro bodies are strings to rpm.
    _Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
    return _Loader


def _mapping(loader, node) -> Mapping:
    loader.flatten_mapping(node)
    result = Mapping()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise ConfigError(f"{loader.name}:{line}: key {key!r} must be a string")
        if key in result:
            raise ConfigError(
                f"{loader.name}:{line}: duplicate key {key!r} (first at line {result.key_lines[key]}); keep one"
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _sequence(loader, node) -> Sequence:
    result = Sequence(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def load_yaml(path: Path, what: str = "YAML file") -> Any:
    """Parse *path*; any problem becomes a one-line ConfigError naming file and line."""
    return parse_yaml(read_yaml_bytes(path, what), path, what)


def read_yaml_bytes(path: Path, what: str = "YAML file") -> bytes:
    try:
        return read_user_file(path, what, max_bytes=MAX_YAML)
    except UsageError as exc:
        raise ConfigError(exc.message) from None


def parse_yaml(raw: bytes, path: Path, what: str = "YAML file") -> Any:
    """Parse the bytes *raw* read from *path*."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); is this the right file?") from None
    import yaml

    loader = _loader_class()(text)
    loader.name = str(path)  # type: ignore[attr-defined]
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a {what}") from None
    finally:
        loader.dispose()


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keys(data: Mapping, allowed: Iterable[str], path: Path, where: str, required: Iterable[str] = ()) -> None:
    """Reject unknown keys (with a hint) and missing required ones."""
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{path}:{data.line_of(key)}: unknown key {key!r} in {where}{did_you_mean(key, allowed)}"
                f" (allowed: {', '.join(allowed)})"
            )
    for key in required:
        if key not in data:
            raise ConfigError(f"{path}:{data.line}: {where} needs the key {key!r}")


def expect_mapping(value: Any, path: Path, where: str, line: int) -> Mapping:
    if value is None:
        empty = Mapping()
        empty.line, empty.key_lines = line, {}
        return empty
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}:{line}: {where} must be a mapping (key: value), not {_kind(value)}")
    return value


def expect_str(value: Any, path: Path, where: str, line: int, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not value.strip() and not empty_ok):
        raise ConfigError(f"{path}:{line}: {where} must be a non-empty string, not {_kind(value)}")
    return value


def expect_str_list(value: Any, path: Path, where: str, line: int, *, single_ok: bool = True) -> tuple[str, ...]:
    """A list of strings (one string alone counts as a list of one when *single_ok*)."""
    if value is None:
        return ()
    if isinstance(value, str) and single_ok:
        return (value,)
    if not isinstance(value, list):
        raise ConfigError(f"{path}:{line}: {where} must be a list of strings, not {_kind(value)}")
    lines = getattr(value, "item_lines", [line] * len(value))
    return tuple(expect_str(item, path, f"{where} item", item_line) for item, item_line in zip(value, lines, strict=False))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"
