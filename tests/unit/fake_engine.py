"""One hand-written fake of the container interface, for unit tests of the logic around it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeContainer:
    """Answers each command by its first words: ``answers[("uname", "-m")] = (0, b"i686\\n")``."""

    answers: dict[tuple[str, ...], tuple[int, bytes]] = field(default_factory=dict)
    name: str = "fake"
    ran: list[list[str]] = field(default_factory=list)

    def run(self, argv, *, user=None, workdir=None, env=None, output=None) -> int:
        self.ran.append(list(argv))
        for length in range(len(argv), 0, -1):
            key = tuple(argv[:length])
            if key in self.answers:
                code, data = self.answers[key]
                if output:
                    output(data)
                return code
        return 127


@dataclass
class FakeEngine:
    """Hands out one FakeContainer per container() call, answers run_once() the same way, and
    records commits."""

    answers: dict[tuple[str, ...], tuple[int, bytes]] = field(default_factory=dict)
    boxes: list[FakeContainer] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    missing: Exception | None = None  # raised by run_once(), as when no engine answers
    live: int = 0  # one-shot containers started and not yet removed

    def run_once(self, image, argv, *, user=None, meanwhile=None):
        if self.missing is not None:
            raise self.missing
        self.live += 1
        try:
            if meanwhile is not None:
                meanwhile()
            box = FakeContainer(dict(self.answers))
            chunks: list[bytes] = []
            return box.run(argv, output=chunks.append), b"".join(chunks)
        finally:
            self.live -= 1

    def container(self, image, *, mounts, hostname=None):
        from contextlib import contextmanager

        engine = self

        @contextmanager
        def started():
            box = FakeContainer(dict(engine.answers))
            box.commit = lambda tag: engine.committed.append(tag) or "sha256:committed"
            engine.boxes.append(box)
            yield box

        return started()
