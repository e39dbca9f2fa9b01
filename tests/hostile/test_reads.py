"""Reads that must end: the files rebuild keeps (pins, locks, stamps, first-use pins, the index, a result's
manifest) as FIFOs, deep JSON or junk, and an image whose lock is larger than any lock rebuild writes."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading

import pytest

from rebuild.errors import UsageError
from rebuild.files import read_json
from rebuild.roots.buildroot import read_known
from rebuild.roots.lock import read_lock
from tests.hostile.conftest import within


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


def test_a_fifo_in_place_of_a_json_file_is_refused_at_once(fifo):
    with within(5), pytest.raises(UsageError, match="FIFO"):
        read_json(fifo, "pin")
    with within(5), pytest.raises(UsageError, match="FIFO"):
        read_lock(fifo)
    with within(5), pytest.raises(UsageError, match="FIFO"):
        read_known(fifo)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "\xff\xfe", "nul\0", ""])
def test_deep_or_odd_json_is_one_usage_error(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(UsageError) as err:
        read_json(path, "pin")
    assert str(path) in err.value.message and "\n" not in err.value.message
    with pytest.raises(UsageError):
        read_lock(path)


def test_damaged_first_use_pins_are_refused_not_forgotten(tmp_path):
    path = tmp_path / "packages.json"
    path.write_text('{"a.rpm": "not-a-digest"}')
    with pytest.raises(UsageError, match="delete it to"):
        read_known(path)
    assert read_known(tmp_path / "absent.json") == {}


def test_the_cli_meets_a_fifo_pin_with_one_line(tmp_path, fifo):
    """rebuild's own cache files are read the same way: a FIFO planted as a target's pin does not hang."""
    from rebuild.config.target import load_target
    from rebuild.roots.pins import image_dir, read_pin

    target = load_target("testroot")
    folder = image_dir(target, tmp_path)
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pin.json")
    with within(5):
        assert read_pin(target, tmp_path) is None


@pytest.mark.docker
def test_an_image_lock_over_the_bound_is_refused_without_a_hang(engine):
    """--pull reads the lock an image carries; one over 64 MiB used to deadlock the engine's copy."""
    tag = "rebuild-test/biglock:1"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("usr/share/rebuild/root.lock.json")
        info.size = (64 << 20) + 4096
        tar.addfile(info, io.BytesIO(b" " * info.size))
    subprocess.run(["docker", "import", "-", tag], input=data.getvalue(), check=True, capture_output=True)
    try:
        done = []

        def read():
            try:
                engine.read_file(tag, "/usr/share/rebuild/root.lock.json")
            except UsageError as exc:
                done.append(exc.message)

        worker = threading.Thread(target=read, daemon=True)
        worker.start()
        worker.join(60)
        assert done and "over 64 MiB" in done[0], "refused, and the engine answers again"
        assert engine.image_id(tag)
        left = subprocess.run(["docker", "ps", "-aq", "--filter", "name=rebuild-read-"], capture_output=True, text=True)
        assert left.stdout.strip() == "", "the reading container was removed"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_a_work_folder_a_killed_run_left_is_removed_by_the_next(tmp_path):
    """An unpacked root a SIGKILLed `rebuild image` left in the cache (device nodes and all) goes at the next
    make; one of a process still running stays."""
    from rebuild.files import work_folder

    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f".root-{dead.pid}-abc"
    (left / "root" / "dev").mkdir(parents=True)
    alive = tmp_path / f".root-{os.getppid()}-def"
    alive.mkdir()
    fresh = work_folder(tmp_path, ".root")
    assert not left.exists() and alive.exists() and fresh.is_dir() and f"-{os.getpid()}-" in fresh.name
