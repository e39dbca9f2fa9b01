"""One sha256 (hashlib's), the same for bytes and files of any size."""

from __future__ import annotations

import hashlib
import os

from rebuild.files import CHUNK, sha256_bytes, sha256_file


def test_digests_match_hashlib_across_block_boundaries(tmp_path):
    for size in (0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK):
        data = os.urandom(size)
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        assert sha256_bytes(data) == hashlib.sha256(data).hexdigest()
        assert sha256_file(path) == hashlib.sha256(data).hexdigest()
