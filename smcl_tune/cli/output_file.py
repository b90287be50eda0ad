"""`--output FILE`: refused before any work when it cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

from smcl_tune.errors import ConfigError


def checked_output(path: str | None) -> Path | None:
    """The file `--output` names, in a folder that exists and this user may write in (ConfigError
    before anything runs)."""
    if path is None:
        return None
    output = Path(path)
    if output.is_dir():
        raise ConfigError(f"--output {path}: that is a folder; name a file in it")
    folder = output.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist; make it first"
        raise ConfigError(f"--output {path}: its folder {folder} {what}")
    if not os.access(output if output.exists() else folder, os.W_OK):
        raise ConfigError(f"--output {path}: not writable by this user")
    if not output.exists():
        _check_creatable(output, path)
    return output


def _check_creatable(output: Path, path: str) -> None:
    """A new file can be made there, made and removed at once: some folders take none whatever
    their mode says (/proc, a pseudo filesystem), and the work would be done for nothing. A link
    to a file still to be written is checked at its target, which the link is written through."""
    target = output.resolve()
    try:
        target.open("x").close()
    except OSError as error:
        raise ConfigError(f"--output {path}: cannot write it ({error.strerror or error})") from None
    target.unlink()


def write_output(output: Path, text: str) -> None:
    """Written through, as a shell's `>` would: a pipe, /dev/stdout, a link and the file's mode work;
    ended by a newline, as the same text printed is."""
    try:
        output.write_text(text if text.endswith("\n") else text + "\n")
    except OSError as error:
        raise ConfigError(f"--output {output}: cannot write it ({error.strerror or error})") from None
