"""next_version and the version/dataset name rules."""

from __future__ import annotations

import pytest

from releases import InvalidReleaseSpecError, list_versions, next_version
from releases.versions import bump_version, parse_version


def test_no_release_yet(tmp_path):
    assert next_version(tmp_path, "sad", "patch") == "0.1.0"
    assert next_version(tmp_path, "sad", "minor") == "0.1.0"
    assert next_version(tmp_path, "sad", "major") == "1.0.0"


def test_bumps_from_highest_semver_not_lexical(tmp_path):
    for v in ("0.1.0", "0.2.0", "0.10.0", "0.9.3"):
        (tmp_path / "sad" / v).mkdir(parents=True)
    (tmp_path / "sad" / ".0.11.0.tmp-host-1-abcd").mkdir()  # a write in progress
    (tmp_path / "sad" / "notes").mkdir()
    (tmp_path / "sad" / "9.9.9.bak").mkdir()
    (tmp_path / "sad" / "README").write_text("x")
    assert list_versions(tmp_path, "sad") == ["0.1.0", "0.2.0", "0.9.3", "0.10.0"]
    assert next_version(tmp_path, "sad", "patch") == "0.10.1"
    assert next_version(tmp_path, "sad", "minor") == "0.11.0"
    assert next_version(tmp_path, "sad", "major") == "1.0.0"
    assert next_version(tmp_path, "other", "minor") == "0.1.0"


def test_bump_rules():
    assert bump_version("1.2.3", "patch") == "1.2.4"
    assert bump_version("1.2.3", "minor") == "1.3.0"
    assert bump_version("1.2.3", "major") == "2.0.0"
    with pytest.raises(ValueError, match="bump must be one of"):
        bump_version("1.2.3", "huge")


@pytest.mark.parametrize("bad", ["1.2", "1.2.3.4", "01.2.3", "1.2.3-rc1", "../1.2.3", "", "1.2.x"])
def test_parse_version_refuses(bad):
    with pytest.raises(InvalidReleaseSpecError):
        parse_version(bad)


def test_next_version_refuses_bad_dataset(tmp_path):
    with pytest.raises(InvalidReleaseSpecError):
        next_version(tmp_path, "../etc", "patch")
