"""A study whose `storage` is an object store (s3://..., gs://...): it answers, and lets this
machine read and write the study's folder, before anything starts (otherwise Ray's first look at
it is a traceback, after the study's MLflow run exists)."""

from __future__ import annotations

import os
import socket

from smcl_tune.errors import ConfigError, first_line

PROBE_PREFIX = ".smcl-tune-probe"


def check_object_store(uri: str, field: str = "storage") -> None:
    """Read the study's folder, then write and delete a small object in it (ConfigError when
    either is refused or the store does not answer)."""
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
        filesystem.get_file_info(path)
        filesystem.create_dir(path)
        probe = f"{path.rstrip('/')}/{PROBE_PREFIX}-{socket.gethostname()}-{os.getpid()}"
        with filesystem.open_output_stream(probe) as stream:
            stream.write(b"")
        filesystem.delete_file(probe)
    except (OSError, ValueError) as error:  # pyarrow: OSError from the store, ValueError from the URI
        raise ConfigError(
            f"{field}: the object store {uri} cannot be used from {socket.gethostname()} ({first_line(error)}); "
            f"check its address (endpoint_override, scheme), the bucket's name, and {_credentials(uri)}"
        ) from None


def _credentials(uri: str) -> str:
    if uri.startswith("s3://"):
        return "this machine's credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or its instance role)"
    return "this machine's credentials for it"
