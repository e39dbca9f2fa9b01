"""rebuild.evr (rpm-version) against rpm itself: librpm's labelCompare and the rpm binary's Lua vercmp."""

from __future__ import annotations

import random
import subprocess

import pytest

from rebuild.errors import UsageError
from rebuild.systems.evr import compare, parse
from tests.conftest import run_cli

MISSION_CASES = [
    ("0.9.6b", "0.9.6", 1),
    ("0.9.6b-32.7", "0.9.6b-32.7", 0),
    ("4.0.4-7x.18", "4.0.4-7x.9", 1),
    ("0.75-46.7.3", "0.75-46.7.10", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0.1", -1),
    ("1.01", "1.1", 0),
    ("1_0", "1.0", 0),
    ("1.0", "1.0.0", -1),
    ("0:1.0-1", "1.0-1", 0),
    ("1:0.1", "9.9", 1),
    ("1.0", "1.0-1", -1),
]


@pytest.mark.parametrize("a, b, expected", MISSION_CASES)
def test_mission_cases(a, b, expected):
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


def _random_evr(rng: random.Random) -> str:
    alphabet = ["0", "1", "2", "9", "10", "01", "a", "b", "rc", "~", "^", ".", "_", "+", "x", "7x"]
    def part():
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
        return text if text[0].isalnum() else "1" + text
    evr = part()
    if rng.random() < 0.3:
        evr = f"{rng.randint(0, 2)}:{evr}"
    if rng.random() < 0.7:
        evr += "-" + part()
    return evr


def _pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a = _random_evr(rng)
        b = a if rng.random() < 0.1 else _random_evr(rng)
        pairs.append((a, b))
    return pairs


def test_agrees_with_librpm_label_compare_on_thousands_of_pairs():
    import rpm

    for a, b in _pairs(5000, seed=7):
        pa, pb = parse(a), parse(b)
        expected = rpm.labelCompare(pa.label(), pb.label())
        assert compare(a, b) == expected, (a, b)


def test_agrees_with_rpm_cli_vercmp_on_thousands_of_pairs():
    """A second, independent path: the rpm binary's own Lua rpm.vercmp on the full strings."""
    pairs = _pairs(3000, seed=11)
    results = []
    for start in range(0, len(pairs), 500):
        lua = "".join(f'print(rpm.vercmp("{a}", "{b}") .. ",")\n' for a, b in pairs[start : start + 500])
        out = subprocess.run(["rpm", "--eval", "%{lua:" + lua + "}"], capture_output=True, text=True, check=True)
        # rpm --eval swallows print's newlines: each result carries its own separator
        results += [int(x) for x in out.stdout.replace("\n", "").split(",") if x]
    assert len(results) == len(pairs)
    mismatches = [(a, b, r) for (a, b), r in zip(pairs, results, strict=False) if compare(a, b) != r]
    assert mismatches == []


@pytest.mark.parametrize("bad", ["", " 1.0", "1.0 -1", "a:1.0", "1.0-2-3", "1.0-", ":1", "1.0/2"])
def test_malformed_versions_are_refused(bad):
    with pytest.raises(ValueError):
        parse(bad)
    with pytest.raises(UsageError):
        compare(bad, "1.0")


@pytest.mark.parametrize("a, b, line, code", [("0.9.6b", "0.9.6", "0.9.6b > 0.9.6", 11),
                                              ("1.0~rc1", "1.0", "1.0~rc1 < 1.0", 12),
                                              ("1.01", "1.1", "1.01 == 1.1", 0)])
def test_cli_vercmp_exit_codes_like_rpmdev_vercmp(a, b, line, code):
    proc = run_cli("vercmp", a, b)
    assert (proc.returncode, proc.stdout.strip()) == (code, line)


def test_cli_vercmp_bad_input():
    proc = run_cli("vercmp", "1 0", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
