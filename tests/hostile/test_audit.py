"""audit-mc on files that are not what they seem: a FIFO, a device, a huge file, deep quoting, letters
outside ASCII, and m4 it cannot follow (which must not pass as clean)."""

from __future__ import annotations

import os
import random

import pytest

from tests.conftest import DATA
from tests.hostile.conftest import one_line_error, quietly, within

CLEAN = (DATA / "mc" / "clean.mc").read_text()


def test_a_fifo_and_a_device_are_refused_at_once(tmp_path):
    fifo = tmp_path / "sendmail.mc"
    os.mkfifo(fifo)
    with within(10):
        one_line_error(quietly("audit-mc", str(fifo)), 2)
        one_line_error(quietly("audit-mc", "/dev/zero"), 2)


def test_a_huge_file_is_refused(tmp_path):
    big = tmp_path / "big.mc"
    big.write_bytes(b"dnl x\n" * (1 << 19))
    with within(10):
        one_line_error(quietly("audit-mc", str(big)), 2)


def test_deep_quoting_is_linear(tmp_path):
    deep = tmp_path / "deep.mc"
    deep.write_text("define(`confAUTH_MECHANISMS', " + "`" * 20000 + "LOGIN" + "'" * 20000 + ")\n")
    with within(5):
        proc = quietly("audit-mc", str(deep))
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr


@pytest.mark.parametrize("text", ["define(`confCACERT', `/etc/certs/Café.pem')dnl\nCafé dnl\n" + CLEAN,
                                  CLEAN.encode().decode("latin-1") + "Stra\xdfe\n",
                                  "".join(chr(random.Random(5).randrange(1, 0x2000)) for _ in range(5000))])
def test_letters_outside_ascii_are_read(tmp_path, text):
    mc = tmp_path / "x.mc"
    mc.write_text(text, encoding="utf-8")
    proc = quietly("audit-mc", str(mc))
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr


@pytest.mark.parametrize("tail", ["TRUST_AUTH_MECH(`EXTERNAL')dnl\nFEATURE(`access_db'",
                                  "changequote([,])dnl\nTRUST_AUTH_MECH([EXTERNAL])dnl\n",
                                  "define(`x', `unclosed\nTRUST_AUTH_MECH(`EXTERNAL')\n"])
def test_what_it_cannot_read_does_not_pass_as_clean(tmp_path, tail):
    mc = tmp_path / "x.mc"
    mc.write_text(CLEAN + tail)
    proc = quietly("audit-mc", str(mc), "--json")
    assert proc.returncode == 1, proc.stdout
    assert "unreadable" in proc.stdout or "trust-external" in proc.stdout
