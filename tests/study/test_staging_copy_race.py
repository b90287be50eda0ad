"""Ray's background copy of the experiment state meets a searcher state renamed while it runs: that
record (an ERROR and a traceback, which broke the live view in CI) is logged at debug; any other
error of the copy is still shown."""

import logging

import pyarrow.fs as pafs
import pytest

from smcl_tune.study.staging_copy_race import EXPERIMENT_STATE_LOGGER, without_staging_copy_races


def _error_opening(path) -> FileNotFoundError:
    with pytest.raises(FileNotFoundError) as raised:
        pafs.LocalFileSystem().open_input_stream(str(path))  # pyarrow's own error, as its copy raises it
    return raised.value


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _shown(error: BaseException) -> bool:
    logger = logging.getLogger(EXPERIMENT_STATE_LOGGER)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        with without_staging_copy_races():
            try:
                raise RuntimeError("the copy failed") from error
            except RuntimeError:
                logger.error("Saving experiment state to storage at 'x' failed with exception: ", exc_info=True)
    finally:
        logger.removeHandler(collect)
    return bool(collect.records)


def test_a_temporary_state_file_renamed_during_the_copy_is_not_shown(tmp_path):
    assert not _shown(_error_opening(tmp_path / ".5fed37c4-b506-4f8c-b557-ca7f4479c479-tmp-searcher-state.pkl"))


def test_other_errors_of_the_copy_are_shown(tmp_path):
    assert _shown(_error_opening(tmp_path / "searcher-state.pkl"))  # a state file itself is missing
    present = tmp_path / ".still-here"
    present.write_text("x")
    error = _error_opening(tmp_path / ".gone")
    assert _shown(FileNotFoundError(str(error).replace(str(tmp_path / ".gone"), str(present))))
    assert _shown(PermissionError(f"Failed to open local file '{tmp_path / '.gone'}'"))


def test_the_filter_ends_with_the_study(tmp_path):
    with without_staging_copy_races():
        pass
    assert not logging.getLogger(EXPERIMENT_STATE_LOGGER).filters
