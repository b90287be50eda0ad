"""`--output FILE`: refused before any work when it cannot be written, and written whole."""

from __future__ import annotations

from pathlib import Path

from smcl_tune.atomic_write import write_bytes_atomically
from smcl_tune.errors import ConfigError


def checked_output(path: str | None) -> Path | None:
    """The file `--output` names, whose folder exists (ConfigError before anything runs)."""
    if path is None:
        return None
    output = Path(path)
    if output.is_dir():
        raise ConfigError(f"--output {path}: that is a folder; name a file in it")
    if not output.parent.is_dir():
        what = "is a file, not a folder" if output.parent.exists() else "does not exist; make it first"
        raise ConfigError(f"--output {path}: its folder {output.parent} {what}")
    return output


def write_output(output: Path, text: str) -> None:
    write_bytes_atomically(output, text.encode())
