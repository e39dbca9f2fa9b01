"""Images in a Docker engine by content: their identity, and moving them through a registry.

``content_id`` is what an image is, whatever host holds it: the sha256 of its layers' digests (the
uncompressed ``RootFS.Layers``), its environment, labels, user and platform, and not its creation time.
A pushed and pulled image keeps it; so does the same root tarball imported on two hosts. Pins and build
keys use it, so a result built on one engine is up to date on another.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass

from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.files import sha256_bytes
from rebuild.systems.urls import redact_value

# REPOSITORY[:TAG]@sha256:HEX, the repository possibly with a registry host and port
REFERENCE = re.compile(r"^(?P<repository>[a-z0-9]+(?:[._:-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
                       r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?@(?P<digest>sha256:[0-9a-f]{64})$")
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._:-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


@dataclass(frozen=True)
class ImageInfo:
    id: str
    content_id: str
    labels: dict
    repo_digests: tuple[str, ...]


@dataclass(frozen=True)
class Reference:
    repository: str
    tag: str | None
    digest: str

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


def parse_reference(text: str, where: str = "--pull") -> Reference:
    """REPOSITORY[:TAG]@sha256:DIGEST; a bare tag is refused (a tag can be moved, a digest cannot)."""
    match = REFERENCE.match(text.strip())
    if not match:
        hint = " (a tag alone can be moved to other content: give the digest `rebuild image --push` printed)" \
            if "@" not in text else ""
        raise UsageError(f"{where} {redact_value(text)!r}: expected REPOSITORY[:TAG]@sha256:<64 hex digits>{hint}")
    return Reference(match["repository"], match["tag"], match["digest"])


def content_id(attrs: dict) -> str:
    """What the image whose ``inspect`` answer is *attrs* is, whatever host holds it."""
    config = attrs.get("Config") or {}
    made_of = {"layers": (attrs.get("RootFS") or {}).get("Layers") or [], "env": config.get("Env") or [],
               "labels": config.get("Labels") or {}, "user": config.get("User") or "",
               "platform": [attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant")]}
    return "sha256:" + sha256_bytes(json.dumps(made_of, sort_keys=True).encode())


def inspect(api, ref: str) -> ImageInfo | None:
    """The image *ref* through the engine API (the SDK's ``APIClient``), or None."""
    from docker.errors import APIError, ImageNotFound

    try:
        attrs = api.inspect_image(ref)
    except ImageNotFound:
        return None
    except APIError as exc:
        raise EnvironmentProblem(f"Docker engine: cannot look up image {ref}: {exc.explanation or exc}") from None
    return ImageInfo(attrs["Id"], content_id(attrs), dict((attrs.get("Config") or {}).get("Labels") or {}),
                     tuple(attrs.get("RepoDigests") or ()))


def push(client, image: str, repository: str, tag: str, log) -> str:
    """Tag *image* as REPOSITORY:TAG, push it, return the manifest digest the registry stored."""
    import docker.errors

    if not REPOSITORY.match(repository):
        raise UsageError(f"--push {redact_value(repository)!r}: not a repository name (e.g. 127.0.0.1:5000/rebuild/rh73)")
    client.api.tag(image, repository, tag)
    digest = None
    try:
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise EnvironmentProblem(f"pushing {repository}:{tag}: {event['error']}")
            digest = (event.get("aux") or {}).get("Digest") or digest
            if event.get("status") and event.get("id") is None:
                log.info(f"    {event['status']}")
    except docker.errors.APIError as exc:
        raise EnvironmentProblem(f"pushing {repository}:{tag}: {exc.explanation or exc}") from None
    if not digest:
        raise EnvironmentProblem(f"pushing {repository}:{tag}: the registry returned no digest")
    return digest


def pull(client, api, ref: Reference, log) -> ImageInfo:
    """Pull REPOSITORY@DIGEST (never by tag); the engine checks every blob against it. CheckFailed when the
    registry's content does not match the digest."""
    import docker.errors

    try:
        for event in client.api.pull(ref.repository, tag=ref.digest, stream=True, decode=True):
            if "error" in event:
                _pull_failed(ref, event["error"])
            if event.get("status") and event.get("id") is None:
                log.info(f"    {event['status']}")
    except docker.errors.APIError as exc:
        _pull_failed(ref, str(exc.explanation or exc))
    info = inspect(api, ref.pinned)
    if info is None or ref.pinned not in info.repo_digests:
        raise CheckFailed(f"{ref.pinned}: the engine holds no image with that digest after pulling it")
    return info


def _pull_failed(ref: Reference, message: str):
    if any(word in message for word in ("verification failed", "digest", "checksum", "unexpected")) \
            and "not found" not in message and "unknown" not in message:
        raise CheckFailed(f"{ref.pinned}: refused: the registry's content does not match the digest ({message})")
    raise EnvironmentProblem(f"pulling {ref.pinned}: {message}")


def read_file(api, image: str, path: str, max_bytes: int = 64 << 20) -> bytes | None:
    """A file of *image* (None when absent): a created, never started container, copied from, removed.
    A file over *max_bytes* is a UsageError; the copy is cut off before the container is removed (the engine
    holds a removal until the copy it streams has ended)."""
    import io
    import tarfile

    from docker.errors import NotFound

    created = api.create_container(image, command=["true"], name=f"rebuild-read-{os.urandom(6).hex()}", hostname=None,
                                   user="", network_disabled=True, labels={"org.rebuild": "1"},
                                   host_config=api.create_host_config(network_mode="none", mounts=[]))
    try:
        # the SDK's get_archive hands back a generator that keeps the response open: ask for the answer itself
        response = api._get(api._url("/containers/{0}/archive", created["Id"]), params={"path": path}, stream=True)
        with response:
            if response.status_code == 404:
                return None
            api._raise_for_status(response)
            try:
                stat = json.loads(base64.b64decode(response.headers.get("X-Docker-Container-Path-Stat", "")) or b"{}")
            except ValueError:
                stat = {}
            size = stat.get("size", 0) if isinstance(stat, dict) else 0
            if not isinstance(size, int) or size > max_bytes:
                raise UsageError(f"{image}:{path}: over {max_bytes >> 20} MiB; not a file rebuild reads from an image")
            data = b""
            for chunk in response.iter_content(1 << 20):
                data += chunk
                if len(data) > max_bytes + (1 << 20):  # the tar's headers and padding are well under 1 MiB
                    raise UsageError(f"{image}:{path}: over {max_bytes >> 20} MiB; not a file rebuild reads from"
                                     " an image")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None or not member.isreg():
                return None
            return tar.extractfile(member).read()
    except NotFound:
        return None
    finally:
        api.remove_container(created["Id"], force=True, v=True)
