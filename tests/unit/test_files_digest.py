"""One sha256 whatever the input's size: the interpreter's own for the first SMALL_INPUT bytes, OpenSSL's after."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from rebuild.files import SMALL_INPUT, sha256_bytes, sha256_file

ROOT = Path(__file__).resolve().parents[2]


def test_digests_match_hashlib_on_both_sides_of_the_threshold(tmp_path):
    for size in (0, 1, 1000, SMALL_INPUT // 2, SMALL_INPUT, SMALL_INPUT + 1, 3 * SMALL_INPUT):
        data = os.urandom(size)
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        assert sha256_bytes(data) == hashlib.sha256(data).hexdigest()
        assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_hashing_small_inputs_does_not_load_openssl(tmp_path):
    """The no-op rebuild and check-deps hash only small files: OpenSSL's ~3 ms load stays out of them."""
    small = tmp_path / "small"
    small.write_bytes(b"x" * 1000)
    code = ("import sys; from rebuild.files import sha256_file, sha256_bytes;"
            f" sha256_file({str(small)!r}); sha256_bytes(b'abc');"
            " import rebuild.pipeline.quickindex, rebuild.config.floors, rebuild.systems.dockerimages;"
            " print('_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_openssl_takes_over_once_the_small_budget_is_spent(tmp_path):
    """Hashing megabytes with the interpreter's own SHA-256 would cost more than loading OpenSSL."""
    big = tmp_path / "big"
    big.write_bytes(b"x" * (SMALL_INPUT + 1))
    code = ("import sys; from rebuild.files import sha256_file;"
            f" sha256_file({str(big)!r}); print('_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "True"
