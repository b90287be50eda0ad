"""Ray Tune's driver writes its experiment state in place: `TuneController.save_to_dir` opens
`experiment_state-<session>.json` in its staging folder with `open(path, "w")` and dumps the JSON
into it, while its background copy of that folder into the storage may still run (the copy of the
last save). That copy then takes a torn file, a prefix of the JSON, into any storage: a folder, or
an object store, where nothing can tell it from a whole one. A driver killed before the next copy
left a study that could not be resumed (benchmarks/state_copy_race.py).

During a study's fit, the `open` that Ray's tune controller module calls writes that one file under
a temporary name (Ray's own naming, `.<uuid4>-tmp-<name>`) in the folder above the staging folder,
which no copy lists, and renames it into place when it is closed: a copy finds the previous state or
the new one, whole, and never a temporary that is gone when it opens it.
Every other `open` of that module, and every other module, is left as it is. If Ray stops writing
the state this way, nothing here applies (tests/study/test_whole_state_saves.py says so), and the
storage checks still refuse a torn state (store/probes).
"""

from __future__ import annotations

import builtins
import fnmatch
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smcl_tune.store.probes import EXPERIMENT_STATE_FILES

_NOT_SET = object()


class _RenamedWhenClosed:
    """A text file written under a temporary name and renamed to `path` when closed without error;
    a failed write (or close) removes the temporary and leaves `path` as it was."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        # beside the staging folder, on its disk: the rename is atomic, and the copy never lists it
        self.temporary = path.parent.parent / f".{uuid.uuid4()}-tmp-{path.name}"
        self._file = builtins.open(self.temporary, "w", encoding=encoding)  # noqa: SIM115 (closed by close())

    def __getattr__(self, name: str):
        return getattr(self._file, name)  # flush, fileno, closed, ... of the temporary

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.close()
            os.replace(self.temporary, self.path)
        except BaseException:
            self.temporary.unlink(missing_ok=True)
            raise

    def __enter__(self) -> _RenamedWhenClosed:
        return self

    def __exit__(self, error_type, *_details) -> None:
        if error_type is None:
            self.close()
        else:
            self._file.close()
            self.temporary.unlink(missing_ok=True)


def _state_writes_whole(file, mode="r", *arguments, **options):
    """Ray's `open(path, "w")` of its experiment state, written whole; anything else, builtins.open."""
    if mode == "w" and not arguments and set(options) <= {"encoding"} and isinstance(file, (str, os.PathLike)):
        path = Path(file)
        if fnmatch.fnmatch(path.name, EXPERIMENT_STATE_FILES):
            return _RenamedWhenClosed(path, options.get("encoding"))
    return builtins.open(file, mode, *arguments, **options)


@contextmanager
def whole_experiment_state_saves() -> Iterator[None]:
    """For the block (a study's fit, one at a time in a process): Ray's tune controller module
    saves its experiment state whole; afterwards the module is as it was."""
    from ray.tune.execution import tune_controller as module

    previous = module.__dict__.get("open", _NOT_SET)
    module.open = _state_writes_whole
    try:
        yield
    finally:
        if previous is _NOT_SET:
            module.__dict__.pop("open", None)
        else:
            module.open = previous
