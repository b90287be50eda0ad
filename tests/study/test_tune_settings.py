"""A study's Ray Tune settings hold for its fit and leave the process's environment as it was."""

import os

from smcl_tune.study.tune_settings import AUTO_LOGGERS_SWITCH, STUDY_SETTINGS, tune_settings

OTHER = "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"


def test_the_settings_hold_inside_the_block_and_are_gone_after_it(monkeypatch):
    for name in STUDY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    with tune_settings():
        assert os.environ[AUTO_LOGGERS_SWITCH] == "1" and os.environ[OTHER] == "0"
    assert not set(STUDY_SETTINGS) & set(os.environ)


def test_a_users_own_value_is_kept_during_and_after_the_block(monkeypatch):
    monkeypatch.setenv(AUTO_LOGGERS_SWITCH, "0")  # the user wants Ray's TensorBoard files back
    monkeypatch.delenv(OTHER, raising=False)
    with tune_settings():
        assert os.environ[AUTO_LOGGERS_SWITCH] == "0" and os.environ[OTHER] == "0"
    assert os.environ[AUTO_LOGGERS_SWITCH] == "0" and OTHER not in os.environ


def test_an_error_in_the_block_still_restores_the_environment(monkeypatch):
    monkeypatch.delenv(AUTO_LOGGERS_SWITCH, raising=False)
    try:
        with tune_settings():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert AUTO_LOGGERS_SWITCH not in os.environ
