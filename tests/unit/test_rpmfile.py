"""read_info: an RPM's NEVRA and type from its header, read with the host's rpm."""

from __future__ import annotations

import pytest

from rebuild.errors import UsageError
from rebuild.systems.rpmfile import read_info
from tests.conftest import make_srpm
from tests.rpmdb_image import build_packages


@pytest.fixture(scope="module")
def rpms(tmp_path_factory):
    return build_packages([("plainpkg", None, "0.9.6b", "32.7"), ("epochpkg", 3, "1.0~rc1", "1.el")],
                          tmp_path_factory.mktemp("rpms"))


def test_binary_rpm_fields(rpms):
    info = read_info(next(rpms.glob("epochpkg-*.rpm")))
    assert (info.name, info.epoch, info.version, info.release, info.arch) == ("epochpkg", 3, "1.0~rc1", "1.el", "noarch")
    assert not info.is_source
    assert info.nevra == "epochpkg-3:1.0~rc1-1.el.noarch"


def test_no_epoch_is_none(rpms):
    info = read_info(next(rpms.glob("plainpkg-*.rpm")))
    assert info.epoch is None and info.evr == "0.9.6b-32.7"


def test_source_rpm_is_source(tmp_path):
    spec = tmp_path / "srcpkg.spec"
    spec.write_text("Name: srcpkg\nVersion: 8.12.8\nRelease: 9.80\nSummary: s\nLicense: MIT\n%description\ns\n%files\n")
    info = read_info(make_srpm(spec, tmp_path / "out"))
    assert info.is_source and info.arch == "src" and info.nvr == "srcpkg-8.12.8-9.80"


def test_lead_without_a_header_is_one_clear_error(rpms, tmp_path):
    good = next(rpms.glob("plainpkg-*.rpm")).read_bytes()
    bad = tmp_path / "broken.rpm"
    bad.write_bytes(good[:96] + b"\x00" * 200)  # the lead survives, the header does not
    with pytest.raises(UsageError, match=r"broken\.rpm: unreadable RPM header: "):
        read_info(bad)


def test_not_an_rpm(tmp_path):
    page = tmp_path / "page.rpm"
    page.write_bytes(b"<!doctype html>" + b" " * 200)
    with pytest.raises(UsageError, match="not an RPM file"):
        read_info(page)
