"""`whole_file_filesystem.py`: what Ray writes into a local storage is whole or absent, even when
the writing process is killed half-way or its disk refuses the write, and Ray's state files are
readable even when Ray rewrites them while it copies them."""

import json
import os
import pickle
import subprocess
import sys
import threading

import pytest
from pyarrow import fs

from smcl_tune.study.whole_file_filesystem import is_local, remove_partial_copies, whole_file_storage

OLD = b"the state the last whole copy left\n"
# Writes 4 MB into FILE through FILESYSTEM, flushed, then is killed before it can finish.
KILLED_WRITER = """
import os, signal, sys
from pyarrow import fs
from smcl_tune.study.whole_file_filesystem import whole_file_storage
filesystem = whole_file_storage() if sys.argv[1] == "whole" else fs.LocalFileSystem()
stream = filesystem.open_output_stream(sys.argv[2])
stream.write(b"x" * (4 << 20))
stream.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""
# The same write with the process's file size capped at 1 kB (EFBIG), once through a stream and
# once through pyarrow's copy, the way Ray copies into the storage.
REFUSED_WRITER = """
import resource, signal, sys
from pathlib import Path
from pyarrow import fs
from smcl_tune.study.whole_file_filesystem import whole_file_storage
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
big = Path(sys.argv[2]) / "staging" / "big.bin"
big.parent.mkdir()
big.write_bytes(b"x" * (4 << 20))
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
try:
    with whole_file_storage().open_output_stream(sys.argv[1]) as stream:
        stream.write(b"x" * (4 << 20))
except OSError as error:
    print("stream refused:", error)
try:
    fs.copy_files(str(big), sys.argv[1], destination_filesystem=whole_file_storage())
except OSError as error:
    print("copy refused:", error)
"""


def _write(script: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("filesystem", ["whole", "plain"])
def test_a_writer_killed_half_way_leaves_the_previous_file_whole(tmp_path, filesystem):
    state = tmp_path / "search_gen_state-1.json"
    state.write_bytes(OLD)
    assert _write(KILLED_WRITER, filesystem, str(state)).returncode == -9
    if filesystem == "plain":  # Ray's own local copy writes over the file in place: the old state is gone
        assert state.read_bytes() != OLD
        return
    assert state.read_bytes() == OLD
    assert [path.name for path in tmp_path.iterdir() if not path.name.startswith(".")] == [state.name]
    # the unfinished copy beside it is hidden, and removed when the study resumes
    assert remove_partial_copies(tmp_path) == 1 and list(tmp_path.iterdir()) == [state]


def test_a_refused_write_leaves_the_file_as_it_was_and_nothing_beside_it(tmp_path):
    storage, scratch = tmp_path / "storage", tmp_path / "scratch"
    storage.mkdir(), scratch.mkdir()
    state = storage / "experiment_state-1.json"
    state.write_bytes(OLD)
    done = _write(REFUSED_WRITER, str(state), str(scratch))
    refusals = [line for line in done.stdout.splitlines() if "refused:" in line]
    assert len(refusals) == 2 and all("File too large" in line for line in refusals), done.stdout + done.stderr
    assert state.read_bytes() == OLD and list(storage.iterdir()) == [state]


def test_copies_reads_and_listings_go_through_as_on_the_local_disk(tmp_path):
    source = tmp_path / "staging"
    (source / "checkpoint_000001").mkdir(parents=True)
    (source / "checkpoint_000001" / "model.pt").write_bytes(b"w" * 100_000)
    (source / "tuner.pkl").write_bytes(b"t")
    storage = whole_file_storage()
    fs.copy_files(str(source), str(tmp_path / "storage"), destination_filesystem=storage)
    copied = sorted(str(path.relative_to(tmp_path / "storage")) for path in (tmp_path / "storage").rglob("*"))
    assert copied == ["checkpoint_000001", "checkpoint_000001/model.pt", "tuner.pkl"]
    assert (tmp_path / "storage" / "checkpoint_000001" / "model.pt").read_bytes() == b"w" * 100_000
    storage.copy_file(str(tmp_path / "storage" / "tuner.pkl"), str(tmp_path / "storage" / "copy.pkl"))
    with storage.open_input_stream(str(tmp_path / "storage" / "copy.pkl")) as stream:
        assert stream.read() == b"t"


def test_ray_can_send_it_to_a_worker_and_the_storage_checks_treat_it_as_local():
    received = pickle.loads(pickle.dumps(whole_file_storage()))
    assert is_local(received) and is_local(fs.LocalFileSystem()) and not is_local(fs.S3FileSystem(anonymous=True))


def test_a_state_file_copied_while_ray_rewrites_it_never_replaces_a_readable_one(tmp_path):
    # The driver's save rewrites the experiment state in place (TuneController.save_to_dir) while
    # the last save's copy may still run: without the check, most of these copies were torn JSON.
    from ray.train._internal.storage import _pyarrow_fs_copy_files

    staging, storage = tmp_path / "staging", tmp_path / "storage"
    staging.mkdir(), storage.mkdir()
    state = {"trial_data": [["x" * 200, {"y": list(range(300))}] for _ in range(40)]}  # 64 kB
    name = "experiment_state-2026-12-07_00-00-00.json"
    (staging / name).write_text(json.dumps(state))
    _pyarrow_fs_copy_files(str(staging), str(storage), destination_filesystem=whole_file_storage())
    saving = threading.Event()
    saving.set()

    def save_again_and_again() -> None:
        while saving.is_set():
            with open(staging / name, "w") as file:
                json.dump(state, file)

    saver = threading.Thread(target=save_again_and_again)
    saver.start()
    try:
        for _ in range(100):
            _pyarrow_fs_copy_files(str(staging), str(storage), destination_filesystem=whole_file_storage())
            assert json.loads((storage / name).read_text()) == state
    finally:
        saving.clear()
        saver.join()
    assert os.listdir(storage) == [name]


def test_an_unreadable_experiment_state_keeps_the_previous_version_and_other_files_are_written_as_they_come(
    tmp_path,
):
    storage = whole_file_storage()
    state = tmp_path / "experiment_state-1.json"
    state.write_bytes(OLD)
    with storage.open_output_stream(str(state)) as stream:
        stream.write(b'{"trial_data": [1, ')
    assert state.read_bytes() == OLD and os.listdir(tmp_path) == [state.name]
    # Ray writes its other files whole (renamed into place), and a trial's files are its own
    for name, content in (("searcher-state-1.pkl", pickle.dumps([1, 2])[:-3]), ("result.json", b'{"half": ')):
        with storage.open_output_stream(str(tmp_path / name)) as stream:
            stream.write(content)
        assert (tmp_path / name).read_bytes() == content
