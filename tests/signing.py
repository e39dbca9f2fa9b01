"""Throwaway GnuPG keys and rpmsign, for signature tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Key:
    home: Path
    uid: str
    keyid: str
    public: Path


def make_key(home: Path, uid: str) -> Key:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", uid, "rsa2048", "sign", "never"], check=True, capture_output=True)
    listing = subprocess.run([*gpg, "--with-colons", "--list-keys", uid], check=True, capture_output=True, text=True)
    fpr = next(line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:"))
    public = home / "public.asc"
    exported = subprocess.run([*gpg, "--armor", "--export", fpr], check=True, capture_output=True)
    public.write_bytes(exported.stdout)
    return Key(home, uid, fpr[-16:], public)


def sign_rpm(path: Path, key: Key) -> None:
    subprocess.run(
        ["rpmsign", "--addsign", "--define", f"__gpg {shutil.which('gpg')}", "--define", f"_gpg_path {key.home}",
         "--define", f"_gpg_name {key.uid}", str(path)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )
