"""Configuration: defaults <- file <- environment <- --set, with errors that name key and origin."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusforge.config import ConfigError, load_settings
from corpusforge.secrets import get_secret


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.workspace.path == Path("workspace")
    assert s.sad.rules.min_words == 10
    assert s.sad.rules.bots == ("DeltaBot", "AutoModerator")


def test_precedence_file_env_cli(tmp_path):
    cfg = tmp_path / "corpusforge.toml"
    cfg.write_text('[workspace]\npath = "ws-file"\n[sad.rules]\nmin_words = 7\nbots = ["B1"]\n[sad.splits]\nsalt = "s"\n')
    s = load_settings(cfg, env={})
    assert (s.sad.rules.min_words, s.sad.rules.bots, s.workspace.path) == (7, ("B1",), Path("ws-file"))
    s = load_settings(cfg, env={"CORPUSFORGE__SAD__RULES__MIN_WORDS": "8"})
    assert s.sad.rules.min_words == 8
    s = load_settings(cfg, ["sad.rules.min_words=9", 'sad.rules.bots=["X", "Y"]'], env={"CORPUSFORGE__SAD__RULES__MIN_WORDS": "8"})
    assert (s.sad.rules.min_words, s.sad.rules.bots) == (9, ("X", "Y"))
    s = load_settings(cfg, [], env={}, workspace=tmp_path / "cli-ws")
    assert s.workspace.path == tmp_path / "cli-ws"


def test_unknown_key_names_origin_and_suggests(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sad.rules]\nmin_word = 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    msg = str(err.value)
    assert str(cfg) in msg and "unknown setting 'sad.rules.min_word'" in msg and "did you mean 'min_words'" in msg


def test_bad_values_name_their_origin(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(None, ["sad.splits.train=0.9"], env={})
    assert "--set sad.splits.train=0.9" in str(err.value) and "must be 1" in str(err.value)
    with pytest.raises(ConfigError, match="environment variable CORPUSFORGE__SAD__RULES__MIN_WORDS"):
        load_settings(None, [], env={"CORPUSFORGE__SAD__RULES__MIN_WORDS": "many"})
    with pytest.raises(ConfigError, match="section.key=value"):
        load_settings(None, ["oops"], env={})
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "missing.toml", env={})


def test_secrets_come_from_env_or_ignored_file_and_never_print(tmp_path):
    assert get_secret("ls_token", directory=tmp_path, env={}) is None
    (tmp_path / ".secrets.toml").write_text('ls_token = "abc123"\n')
    s = get_secret("ls_token", directory=tmp_path, env={})
    assert s is not None and s.reveal() == "abc123" and "abc123" not in repr(s) and "abc123" not in str(s)
    s = get_secret("ls_token", directory=tmp_path, env={"CORPUSFORGE_LS_TOKEN": "fromenv"})
    assert s.reveal() == "fromenv"
    gitignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text()
    assert ".secrets.toml" in gitignore
