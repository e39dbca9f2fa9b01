"""One hand-written fake of the container interface (``rebuild.systems.engine.Engine``), for unit
tests of the logic around it.

A command is answered by its longest matching prefix in ``answers``: a ``(code, output)`` pair,
or a callable ``(argv, mounts) -> (code, output)`` that may also act on the host folders the
container has mounted (an ``rpm -i`` that writes a spec into the mounted work tree, say).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

Answer = tuple[int, bytes] | Callable[[list[str], dict[str, Path]], tuple[int, bytes]]


@dataclass
class FakeContainer:
    """Answers each command by its first words: ``answers[("uname", "-m")] = (0, b"i686\\n")``."""

    answers: dict[tuple[str, ...], Answer] = field(default_factory=dict)
    name: str = "fake"
    ran: list[list[str]] = field(default_factory=list)
    mounts: dict[str, Path] = field(default_factory=dict)  # container path -> host path
    committed: list[str] = field(default_factory=list)
    copied: list[tuple[str, str]] = field(default_factory=list)  # ("out" or "in", container path)
    archive: bool = False

    def run(self, argv, *, user=None, workdir=None, env=None, output=None, shown=None) -> int:
        self.ran.append(list(argv))
        for length in range(len(argv), 0, -1):
            key = tuple(argv[:length])
            if key in self.answers:
                answer = self.answers[key]
                code, data = answer(list(argv), self.mounts) if callable(answer) else answer
                if output:
                    output(data)
                return code
        return 127

    def commit(self, tag: str) -> str:
        self.committed.append(tag)
        return "sha256:committed"

    def copy_out(self, path: str) -> None:
        self.copied.append(("out", path))  # the fake's mounts are shared folders: nothing to move

    def copy_in(self, path: str) -> None:
        self.copied.append(("in", path))


@dataclass
class FakeEngine:
    """Hands out one FakeContainer per container() call, answers run_once() the same way, and
    records commits, imports and removals."""

    answers: dict[tuple[str, ...], Answer] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)  # tag -> image ID
    boxes: list[FakeContainer] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    missing: Exception | None = None  # raised by run_once() and container(), as when no engine answers
    live: int = 0  # containers started and not yet removed
    removed_all: int = 0
    labels: dict[str, dict] = field(default_factory=dict)        # image ID -> labels
    registry: dict[str, str] = field(default_factory=dict)       # REPOSITORY@DIGEST -> image ID
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (image, path) -> content

    def for_log(self, log) -> FakeEngine:
        return self

    def image_id(self, tag: str) -> str | None:
        return self.images.get(tag)

    def inspect_image(self, ref: str):
        from rebuild.systems.dockerimages import ImageInfo

        image = self.images.get(ref) or (ref if ref in self.images.values() else None)
        image = image or self.registry.get(ref)
        if image is None:
            return None
        digests = tuple(r for r, i in self.registry.items() if i == image)
        return ImageInfo(image, f"content:{image}", dict(self.labels.get(image, {})), digests)

    def push(self, image: str, repository: str, tag: str) -> str:
        import hashlib

        digest = "sha256:" + hashlib.sha256(f"{image}".encode()).hexdigest()
        self.registry[f"{repository}@{digest}"] = image
        return digest

    def pull(self, ref):
        from rebuild.errors import EnvironmentProblem

        if ref.pinned not in self.registry:
            raise EnvironmentProblem(f"pulling {ref.pinned}: manifest unknown")
        return self.inspect_image(ref.pinned)

    def tag(self, image: str, tag: str) -> None:
        self.images[tag] = image

    def read_file(self, image: str, path: str) -> bytes | None:
        return self.files.get((image, path))

    def import_rootfs(self, tarball, tag: str, labels: dict[str, str]) -> str:
        if not isinstance(tarball, Path):
            for _ in tarball:  # a stream is read to its end, as the engine does
                pass
        self.imported.append(tag)
        self.images[tag] = f"sha256:imported-{len(self.imported)}"
        return self.images[tag]

    def run_once(self, image, argv, *, user=None):
        if self.missing is not None:
            raise self.missing
        self.live += 1
        try:
            box = FakeContainer(dict(self.answers))
            chunks: list[bytes] = []
            return box.run(argv, output=chunks.append), b"".join(chunks)
        finally:
            self.live -= 1

    @contextmanager
    def container(self, image, *, mounts, hostname=None):
        if self.missing is not None:
            raise self.missing
        box = FakeContainer(dict(self.answers), mounts={m.target: Path(m.source) for m in mounts})
        self.boxes.append(box)
        self.live += 1
        try:
            yield box
        finally:
            self.live -= 1
            self.committed.extend(box.committed)

    def remove_all(self) -> None:
        self.removed_all += 1

    def close(self) -> None:
        pass

    def version(self) -> str:
        if self.missing is not None:
            raise self.missing
        return "fake"

    def shell(self, image, argv, *, mounts, user, workdir, hostname, tty) -> int:
        box = FakeContainer(dict(self.answers), mounts={m.target: Path(m.source) for m in mounts})
        self.boxes.append(box)
        return box.run(argv, user=user, workdir=workdir)
