"""URLs: local paths, mirrors, and redaction of credentials wherever a URL is shown or stored."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

# query parameters whose values are secrets (signed URLs, tokens)
_SECRET_PARAM = re.compile(r"(?i)^(x-amz-signature|x-amz-credential|x-amz-security-token|sig|signature|token|"
                           r"access_token|auth|key|api_key|apikey|password|passwd|secret|private_token)$")


def check_url(url: str) -> str | None:
    """Why *url* cannot be fetched, or None (a path without a scheme is fine)."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"malformed URL {url!r} ({exc})"
    if not parsed.scheme:
        return None
    if parsed.scheme not in ("http", "https", "file"):
        return f"{parsed.scheme}:// is not supported; use http, https, file or a path"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return f"URL {url!r} holds a space or a control character; percent-encode it"
    if parsed.scheme in ("http", "https") and not parsed.hostname:
        return f"URL {url!r} has no host"
    return None


def local_path(url: str) -> Path | None:
    """The path of a file:// URL or a plain path; None for http(s)."""
    try:
        parsed = urlsplit(url)
    except ValueError:
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme:
        return Path(url)
    return None


def redact(url: str) -> str:
    """The URL without user:password and without the values of secret query parameters; never raises."""
    try:
        parsed = urlsplit(url)
    except ValueError:
        # unparseable: drop anything between :// and an @ by hand
        return re.sub(r"(?<=://)[^/@]*@", "***@", url)
    netloc = parsed.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parsed.query
    if query:
        pairs = []
        for item in query.split("&"):
            name, sep, value = item.partition("=")
            pairs.append(f"{name}=***" if sep and _SECRET_PARAM.match(unquote(name)) else item)
        query = "&".join(pairs)
    return urlunsplit(parsed._replace(netloc=netloc, query=query))


def redact_value(text: str) -> str:
    """Any value a user gave that may hold credentials (a URL, an image reference ``user:pw@host/repo``,
    one with ``?token=``), redacted as a URL is."""
    if "://" in text:
        return redact(text)
    return redact("//" + text)[2:] if ("@" in text or "?" in text) else text


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """*text* (a recipe, a YAML file) with every URL in it redacted: what may be stored or published."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def with_mirrors(urls: list[str], mirrors: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[str]:
    """Each URL rewritten by the first matching mirror (tried first), then the original."""
    out: list[str] = []
    for url in urls:
        for old, new in mirrors:
            if url.startswith(old):
                out.append(new + url[len(old):])
                break
        out.append(url)
    return list(dict.fromkeys(out))


def with_credentials(url: str, locations) -> str:
    """A stored (redacted) URL made fetchable again: rebased on the one of *locations* (held in memory, with
    their credentials) whose redacted form it starts with; else without the ``***@`` placeholder, so that
    ~/.netrc answers for the host. A URL with no redacted part comes back as it is."""
    if "***" not in url:
        return url
    for location in locations:
        shown = redact(location).rstrip("/")
        if location and shown != location.rstrip("/") and url.startswith(shown + "/"):
            return location.rstrip("/") + url[len(shown):]
    return url.replace("://***@", "://", 1)


def file_name(url: str) -> str:
    """The last path component of *url* (empty when it names a folder)."""
    try:
        return Path(unquote(urlsplit(url).path)).name
    except ValueError:
        return ""
