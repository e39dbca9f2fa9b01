"""RPM version comparison (rpmvercmp semantics) with the ``rpm-version`` package.

Never PEP 440: ``0.9.6b`` is newer than ``0.9.6`` for rpm, ``0.75-46.7.3`` is not a
PEP 440 version at all, and ``~``/``^`` have rpm's own meaning. ``rpm-version`` loads in
about a millisecond (librpm's bindings take 50-100 ms through the virtualenv shim); the
tests hold it to librpm's ``labelCompare`` and to the rpm binary on thousands of pairs.

A version is parsed once: ``EVR.key`` is rpm-version's memcmp-sortable key (``EvrSortKey``),
so comparing two parsed versions is comparing two byte strings (several million a second,
``bench/evr.py``); a missing epoch is 0, a missing release older than any release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rpm_version import EvrSortKey

from rebuild.errors import UsageError

_PART = re.compile(r"^[A-Za-z0-9._+~^]+$")
# the well-formed case in one match; anything else goes through the checks that say what is wrong
_WELL_FORMED = re.compile(r"(?:(\d+):)?([A-Za-z0-9._+~^]+)(?:-([A-Za-z0-9._+~^]+))?")


@dataclass(frozen=True)
class EVR:
    epoch: int | None
    version: str
    release: str | None
    #: the sort key: compare keys, not strings (computed once, here)
    key: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", EvrSortKey.from_values(str(self.epoch or 0), self.version,
                                                                   self.release or ""))

    def __str__(self) -> str:
        text = f"{self.epoch}:" if self.epoch is not None else ""
        text += self.version
        return text + (f"-{self.release}" if self.release is not None else "")

    def label(self) -> tuple[str, str, str | None]:
        # a missing epoch is 0; a missing release stays None (older than any release)
        return (str(self.epoch or 0), self.version, self.release)


def parse(text: str) -> EVR:
    """Parse ``[epoch:]version[-release]``; ValueError with the reason when malformed."""
    match = _WELL_FORMED.fullmatch(text) if isinstance(text, str) else None
    if match and (match.group(1) is None or int(match.group(1)) <= 0xFFFFFFFF):
        epoch, version, release = match.groups()
        return EVR(int(epoch) if epoch is not None else None, version, release)
    if not isinstance(text, str) or not text:
        raise ValueError("empty version")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise ValueError("spaces are not allowed in a version")
    epoch: int | None = None
    rest = text
    if ":" in text:
        head, rest = text.split(":", 1)
        if not head.isdigit():
            raise ValueError(f"epoch {head!r} must be a number")
        epoch = int(head)
        if epoch > 0xFFFFFFFF:  # rpm keeps an epoch in 32 bits and refuses a larger one in a spec
            raise ValueError(f"epoch {head} is above rpm's largest, 4294967295")
    if rest.count("-") > 1:
        raise ValueError("more than one '-': the version part may not contain '-'")
    version, _, release = rest.partition("-")
    if not version:
        raise ValueError("missing version")
    if "-" in rest and not release:
        raise ValueError("'-' with no release after it")
    for part, what in ((version, "version"), (release, "release")):
        if part and not _PART.match(part):
            raise ValueError(f"{what} {part!r} may hold only letters, digits and . _ + ~ ^")
    return EVR(epoch, version, release if "-" in rest else None)


def compare_evr(a: EVR, b: EVR) -> int:
    """-1, 0 or 1 as rpm orders two parsed versions."""
    return (a.key > b.key) - (a.key < b.key)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as rpm orders ``[epoch:]version[-release]`` strings *a* and *b*."""
    try:
        left, right = parse(a), parse(b)
    except ValueError as exc:
        raise UsageError(f"cannot compare {a!r} and {b!r}: {exc}") from None
    return compare_evr(left, right)
