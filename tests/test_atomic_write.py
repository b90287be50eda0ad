"""Files written whole (issue 26, item 3): a storage that fills up mid-write keeps the old file,
leaves no temporary file, and says which storage is full and how much the write needed. On a
tmpfs of the test's own where mounting is possible; with RLIMIT_FSIZE (a file size cap) always."""

import subprocess
import sys

import pytest

from smcl_tune.atomic_write import StorageFull, write_bytes_atomically
from tests.fixtures.ci import skip_unless_ci

OLD = b"the previous checkpoint" * 100  # what CAPPED_WRITE writes first too


@pytest.fixture
def small_filesystem(tmp_path):
    """A 1 MB tmpfs mounted at tmp_path/small, unmounted afterwards."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        skip_unless_ci(
            f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the RLIMIT_FSIZE test covers it"
        )
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_tmpfs_keeps_the_old_file_and_names_the_storage(small_filesystem):
    target = small_filesystem / "trial.pt"
    write_bytes_atomically(target, OLD)
    with pytest.raises(StorageFull) as refused:
        write_bytes_atomically(target, b"x" * (2 << 20))
    message = str(refused.value)
    assert message.startswith(f"{small_filesystem}: the storage is full (")
    assert "writing trial.pt needs 2.0 MB" in message and "run the same command again" in message
    assert target.read_bytes() == OLD
    assert [path.name for path in small_filesystem.iterdir()] == ["trial.pt"]


CAPPED_WRITE = """
import resource, sys
from pathlib import Path
from smcl_tune.atomic_write import StorageFull, write_bytes_atomically
target = Path(sys.argv[1])
write_bytes_atomically(target, b"the previous checkpoint" * 100)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # no file may grow past 1 MB
try:
    write_bytes_atomically(target, b"x" * (2 << 20))
except StorageFull as error:
    print(error)
"""


def test_a_file_size_cap_keeps_the_old_file(tmp_path):
    target = tmp_path / "trial.pt"
    written = subprocess.run([sys.executable, "-c", CAPPED_WRITE, str(target)], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    assert "the storage is full" in written.stdout and "writing trial.pt needs 2.0 MB" in written.stdout
    assert target.read_bytes() == OLD
    assert [path.name for path in tmp_path.iterdir()] == ["trial.pt"]
