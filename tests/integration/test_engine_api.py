"""How rebuild reaches the engine, on the real engine: through the docker SDK's ``APIClient`` (one client
for local, tcp://, TLS and ssh:// engines): a command's output and exit code, files in and out, an image's
attributes, and the SDK's errors for what does not exist."""

from __future__ import annotations

import io
import tarfile

import docker
import pytest

from rebuild.systems.dockerengine import DockerEngine
from rebuild.systems.engine import Mount

pytestmark = pytest.mark.docker


@pytest.fixture
def api_engine():
    engine = DockerEngine()
    yield engine
    engine.close()


def test_exec_output_exit_code_and_files_both_ways(api_engine, testroot, tmp_path):
    engine = api_engine
    assert isinstance(engine.api, docker.APIClient)
    (tmp_path / "in.txt").write_text("from the host\n")
    image = engine.image_id(testroot.tag)
    with engine.container(image, mounts=[Mount(tmp_path, "/data")], hostname="api.test.invalid") as box:
        chunks: list[bytes] = []
        code = box.run(["sh", "-c", "cat /data/in.txt; echo to-stderr >&2; hostname -f; exit 3"], output=chunks.append)
        text = b"".join(chunks).decode()
        assert code == 3 and "from the host" in text and "to-stderr" in text and "api.test.invalid" in text
        big = box.run(["head", "-c", "3000000", "/dev/zero"], output=chunks.append)
        assert big == 0 and sum(len(c) for c in chunks) > 3_000_000, "a long stream arrives whole"
        stream, stat = engine.api.get_archive(box.id, "/etc/hostname")
        member = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
        assert stat["name"] == "hostname" and member.getnames() == ["hostname"]
        assert engine.api.put_archive(box.id, "/tmp", _tar({"put.txt": b"put\n"}))
        out: list[bytes] = []
        assert box.run(["cat", "/tmp/put.txt"], output=out.append) == 0 and b"".join(out) == b"put\n"
    code, output = engine.run_once(image, ["sh", "-c", "echo once; exit 5"])
    assert (code, output) == (5, b"once\n")


def test_inspect_and_the_errors_for_what_does_not_exist(api_engine, testroot):
    engine = api_engine
    info = engine.inspect_image(testroot.tag)
    assert info.id == engine.image_id(testroot.tag) and info.content_id.startswith("sha256:")
    assert engine.inspect_image("rebuild-test/no-such-image:1") is None
    assert engine.image_id("rebuild-test/no-such-image:1") is None
    with pytest.raises(docker.errors.NotFound):
        engine.api.remove_container("rebuild-no-such-container", force=True, v=True)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.api.inspect_image("rebuild-test/no-such-image:1")


def test_the_identity_is_the_sdks_attributes_hashed(testroot):
    attrs = docker.from_env().api.inspect_image(testroot.tag)
    from rebuild.systems.dockerimages import content_id

    assert DockerEngine().inspect_image(testroot.tag).content_id == content_id(attrs)


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
