"""Fetching a CIFAR archive against a real HTTP server on 127.0.0.1: checked by its MD5, kept only
whole, and fetched once when several processes start at once. The archive is a small one of the
same layout, entered in the table of archives as the published one would be."""

import hashlib
import subprocess
import sys

import pytest

from smcl_tune.data.cifar_files import CIFAR_ARCHIVES
from smcl_tune.data.fetch import FetchError, fetch_cifar
from smcl_tune.errors import DataSourceError
from tests.fixtures.archives import ArchiveServer

ARCHIVE = CIFAR_ARCHIVES["cifar10"]


def test_an_archive_is_fetched_checked_and_unpacked_with_its_progress(tmp_path, body, published):
    server = ArchiveServer(body, chunks=3)
    seen = []
    try:
        assert fetch_cifar("cifar10", tmp_path / "data", server.url, lambda done, total: seen.append((done, total)))
    finally:
        server.close()
    assert server.requests == ["/mirror/cifar-10-python.tar.gz"]
    folder = tmp_path / "data" / ARCHIVE.folder
    assert (folder / "test_batch").read_text() == "the content of test_batch"
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 1
    assert not fetch_cifar("cifar10", tmp_path / "data", server.url)  # there: nothing fetched again
    leftovers = [p.name for p in (tmp_path / "data").iterdir() if ".part-" in p.name or "unpacking" in p.name]
    assert leftovers == []


def test_a_wrong_file_is_refused_by_its_checksum_and_nothing_is_kept(tmp_path, published):
    server = ArchiveServer(b"<html>a login page, not the archive</html>")
    try:
        with pytest.raises(FetchError, match=r"is not cifar-10-python.tar.gz \(MD5 [0-9a-f]{32}, expected"):
            fetch_cifar("cifar10", tmp_path / "data", server.url)
    finally:
        server.close()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".cifar-10-python.tar.gz.lock"]


def test_a_corrupt_archive_left_in_the_folder_is_found_by_its_checksum_and_fetched_again(tmp_path, body, published):
    data = tmp_path / "data"
    data.mkdir()
    (data / ARCHIVE.filename).write_bytes(body[: len(body) // 2])  # a download cut short by an older tool
    server = ArchiveServer(body)
    try:
        assert fetch_cifar("cifar10", data, server.url)
    finally:
        server.close()
    assert len(server.requests) == 1
    assert hashlib.md5((data / ARCHIVE.filename).read_bytes()).hexdigest() == published.md5
    assert not ARCHIVE.missing(data)


def test_a_server_that_cannot_be_reached_is_one_line_naming_its_host_the_folder_and_what_to_do(tmp_path):
    with pytest.raises(FetchError) as refused:
        fetch_cifar("cifar10", tmp_path / "data", "http://127.0.0.1:9/")
    message = str(refused.value)
    assert message.startswith(f"could not fetch cifar10 from 127.0.0.1:9 into {tmp_path / 'data'} (")
    assert "smcl-tune prepare" in message and "\n" not in message
    assert not (tmp_path / "data").exists()


def test_a_server_that_cannot_be_reached_leaves_a_folder_that_was_there_as_it_was(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("kept")
    with pytest.raises(FetchError):
        fetch_cifar("cifar10", data / "cifar", "http://127.0.0.1:9/")
    assert sorted(path.name for path in data.iterdir()) == ["notes.txt"]


FETCHER = """
import sys
from dataclasses import replace
from pathlib import Path
from smcl_tune.data.cifar_files import CIFAR_ARCHIVES
from smcl_tune.data.fetch import fetch_cifar
CIFAR_ARCHIVES["cifar10"] = replace(
    CIFAR_ARCHIVES["cifar10"], md5=sys.argv[1], size=int(sys.argv[2]), file_md5s=tuple(sys.argv[5].split(","))
)
fetched = fetch_cifar("cifar10", Path(sys.argv[3]), sys.argv[4])
folder = Path(sys.argv[3]) / CIFAR_ARCHIVES["cifar10"].folder
print(fetched, (folder / "data_batch_1").read_text())
"""


def test_processes_starting_at_once_fetch_once_and_all_read_the_same_files(tmp_path, body, published):
    server = ArchiveServer(body, chunks=4, pause_s=0.5)  # about 2 s: the others start meanwhile
    data = tmp_path / "data"
    try:
        fetchers = [
            subprocess.Popen(
                [
                    *(sys.executable, "-c", FETCHER, published.md5, str(published.size), str(data), server.url),
                    ",".join(published.file_md5s),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [fetcher.communicate(timeout=120) for fetcher in fetchers]
    finally:
        server.close()
    assert all(fetcher.returncode == 0 for fetcher in fetchers), [error[-2000:] for _, error in outputs]
    assert len(server.requests) == 1
    lines = sorted(out.strip() for out, _ in outputs)
    assert lines == ["False the content of data_batch_1"] * 3 + ["True the content of data_batch_1"]


def test_a_folder_whose_files_are_not_cifars_is_fetched_again_and_kept_aside(tmp_path, body, published):
    folder = tmp_path / "data" / ARCHIVE.folder
    folder.mkdir(parents=True)
    for name in ARCHIVE.files:  # the names are all there: a copy cut short, or junk, under them
        (folder / name).write_text("junk")
    assert ARCHIVE.missing(tmp_path / "data") == [] and not published.whole(tmp_path / "data")
    server = ArchiveServer(body)
    try:
        assert fetch_cifar("cifar10", tmp_path / "data", server.url)
    finally:
        server.close()
    assert published.whole(tmp_path / "data") and (folder / "test_batch").read_text() == "the content of test_batch"
    (aside,) = (tmp_path / "data").glob(f"{ARCHIVE.folder}.incomplete-*")
    assert (aside / "test_batch").read_text() == "junk"  # the user's files are moved, not deleted


def test_a_fetch_that_fails_names_what_in_the_folder_is_not_cifars(tmp_path, body, published):
    data = tmp_path / "data"
    (data / ARCHIVE.folder).mkdir(parents=True)
    for name in ARCHIVE.files:
        (data / ARCHIVE.folder / name).write_text("junk")
    (data / ARCHIVE.filename).write_bytes(b"not the archive")  # placed by hand
    with pytest.raises(FetchError) as refused:
        fetch_cifar("cifar10", data, "http://127.0.0.1:9/")
    message = str(refused.value)
    assert message.startswith(f"{data / ARCHIVE.folder}: data_batch_1, data_batch_2, ")
    assert "batches.meta not CIFAR's (another MD5: cut short, or other data); " in message
    assert (
        f"{data / ARCHIVE.filename}: not CIFAR's archive (MD5 {hashlib.md5(b'not the archive').hexdigest()}" in message
    )
    assert "could not fetch cifar10 from 127.0.0.1:9" in message and "\n" not in message


def test_an_interrupted_download_leaves_no_partial_file_and_a_killed_ones_is_cleared(tmp_path, body, published):
    data = tmp_path / "data"
    data.mkdir()
    killed = data / f".{ARCHIVE.filename}.part-999999"  # a fetch killed outright (SIGKILL) left it
    killed.write_bytes(b"half")

    def interrupt(done, total):
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, which the CLI takes as one) mid-download

    server = ArchiveServer(body, chunks=2)
    try:
        with pytest.raises(KeyboardInterrupt):
            fetch_cifar("cifar10", data, server.url, interrupt)
        assert [path.name for path in data.iterdir() if ".part-" in path.name] == []
    finally:
        server.close()


def test_a_mirror_without_the_file_says_which_address_answered_404(tmp_path, published):
    import functools
    import http.server
    import threading

    files = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))  # an empty mirror
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/empty/"
    try:
        with pytest.raises(FetchError, match=rf"\(HTTP 404 File not found at {url}cifar-10-python.tar.gz\)"):
            fetch_cifar("cifar10", tmp_path / "data", url)
    finally:
        server.shutdown()
        server.server_close()


def test_an_unpacking_cut_short_leaves_no_staging_folder(tmp_path, body, published, monkeypatch):
    import tarfile

    def interrupted(*_arguments, **_options):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM taken as one, while the 180 MB unpack

    monkeypatch.setattr(tarfile.TarFile, "extractall", interrupted)
    server = ArchiveServer(body)
    try:
        with pytest.raises(KeyboardInterrupt):
            fetch_cifar("cifar10", tmp_path / "data", server.url)
    finally:
        server.close()
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [
        ".cifar-10-python.tar.gz.lock",
        "cifar-10-python.tar.gz",  # checked whole: the next fetch unpacks it without a download
    ]


def test_a_file_that_cannot_be_read_is_named_in_one_line(tmp_path, published, monkeypatch):
    import smcl_tune.data.cifar_files as cifar_files

    folder = tmp_path / ARCHIVE.folder
    folder.mkdir()
    for name in ARCHIVE.files:
        (folder / name).write_text("the content")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))  # e.g. written by a container's root, mode 600

    monkeypatch.setattr(cifar_files, "md5_of", unreadable)
    with pytest.raises(DataSourceError, match=rf"^{folder / 'data_batch_1'}: cannot read it \(Permission denied\)$"):
        published.damaged(tmp_path)
