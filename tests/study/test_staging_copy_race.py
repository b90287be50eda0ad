"""Ray's background copy of the experiment state meets a searcher state renamed while it runs: those
records (a traceback, which broke the live view in CI) are logged at debug; any other error of the
copy is still shown."""

import logging
import os
import threading
import time
import uuid

import pyarrow.fs as pafs
import pytest
from ray.train._internal.storage import _FilesystemSyncer

from smcl_tune.study.staging_copy_race import EXPERIMENT_STATE_LOGGER, SYNCER_LOGGER, without_staging_copy_races
from smcl_tune.study.whole_file_filesystem import whole_file_storage

RAYS_TEMPORARY = ".5fed37c4-b506-4f8c-b557-ca7f4479c479-tmp-searcher-state-x.pkl"  # Searcher.save_to_dir's naming


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _error_opening(path) -> FileNotFoundError:
    with pytest.raises(FileNotFoundError) as raised:
        pafs.LocalFileSystem().open_input_stream(str(path))  # pyarrow's own error, as its copy raises it
    return raised.value


def _shown(error: BaseException, logger_name: str = EXPERIMENT_STATE_LOGGER) -> bool:
    """Whether the record Ray logs for `error` is shown, logged as Ray logs it on `logger_name`."""
    logger = logging.getLogger(logger_name)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        with without_staging_copy_races():
            try:
                raise error
            except OSError:
                if logger_name == EXPERIMENT_STATE_LOGGER:  # ExperimentStateManager's wait_for_sync
                    logger.error("Saving experiment state to storage at 'x' failed with exception: ", exc_info=True)
                else:  # _FilesystemSyncer._launch_sync_process
                    logger.warning("Last sync command failed with the following error:\n...")
    finally:
        logger.removeHandler(collect)
    return bool(collect.records)


@pytest.mark.parametrize("logger_name", [EXPERIMENT_STATE_LOGGER, SYNCER_LOGGER])
def test_rays_temporary_file_renamed_during_the_copy_is_not_shown(tmp_path, logger_name):
    assert not _shown(_error_opening(tmp_path / RAYS_TEMPORARY), logger_name)


def test_other_errors_of_the_copy_are_shown(tmp_path):
    assert _shown(_error_opening(tmp_path / "searcher-state-x.pkl"))  # a state file itself is missing
    assert _shown(_error_opening(tmp_path / ".hidden-file"))  # not Ray's temporary name
    present = tmp_path / RAYS_TEMPORARY
    present.write_text("x")
    assert _shown(FileNotFoundError(f"Failed to open local file '{present}'"))  # still there
    assert _shown(PermissionError(f"Failed to open local file '{tmp_path / RAYS_TEMPORARY}'"))
    assert not logging.getLogger(EXPERIMENT_STATE_LOGGER).filters and not logging.getLogger(SYNCER_LOGGER).filters


def test_rays_own_syncer_racing_rays_own_saves_shows_nothing(tmp_path):
    # Ray's syncer, started as the experiment state's timed saves start it (not forced), copies the
    # staging folder while a searcher's state is saved there as Ray saves it: a temporary, renamed.
    staging, storage = tmp_path / "staging", tmp_path / "storage"
    staging.mkdir(), storage.mkdir()
    for index in range(200):  # a listing long enough for a rename to land between listing and copying
        (staging / f"trial-{index:03d}.json").write_bytes(b"{}" * 1000)
    saving = threading.Event()
    saving.set()

    def save_again_and_again() -> None:
        while saving.is_set():
            temporary = staging / f".{uuid.uuid4()}-tmp-searcher-state-x.pkl"
            temporary.write_bytes(b"\x80\x04N.")
            time.sleep(0.002)
            os.replace(temporary, staging / "searcher-state-x.pkl")

    collect = _Collect()
    logging.getLogger("ray").addHandler(collect)
    logging.getLogger("smcl_tune").addHandler(collect)
    level = logging.getLogger("smcl_tune").level
    logging.getLogger("smcl_tune").setLevel(logging.DEBUG)
    saver = threading.Thread(target=save_again_and_again)
    saver.start()
    syncer = _FilesystemSyncer(storage_filesystem=whole_file_storage(), sync_period=0, sync_timeout=60)
    try:
        with without_staging_copy_races():
            for _ in range(300):
                syncer.sync_up(str(staging), str(storage))
                time.sleep(0.02)
                if sum("renamed while it ran" in record.getMessage() for record in collect.records) >= 3:
                    break
    finally:
        saving.clear()
        saver.join()
        logging.getLogger("ray").removeHandler(collect)
        logging.getLogger("smcl_tune").removeHandler(collect)
        logging.getLogger("smcl_tune").setLevel(level)
    raced = [record for record in collect.records if "renamed while it ran" in record.getMessage()]
    assert len(raced) >= 3, "the copies never met a rename: the test did not test"
    assert [record.getMessage() for record in collect.records if record.levelno >= logging.WARNING] == []
