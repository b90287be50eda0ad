"""The MLflow tracking URIs smcl-tune can use: an sqlite file, a database server, a tracking
server. MLflow's folder stores (`file://`, a bare path), which MLflow 3 keeps in maintenance mode
and refuses, and schemes MLflow does not know are refused before anything starts."""

from __future__ import annotations

import re

DATABASE_KINDS = ("sqlite", "postgresql", "mysql", "mssql")  # with or without a driver: postgresql+psycopg://
SERVER_SCHEMES = ("http", "https", "databricks", "databricks-uc")  # databricks: also alone, or databricks://PROFILE
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
TRACKING_URI_FORMS = (
    "the tracking URIs smcl-tune uses start with sqlite:///, postgresql://, mysql://, mssql://, http://, https:// "
    "or databricks"
)


def usable_tracking_uri(uri: str) -> bool:
    """Whether `uri` names a store smcl-tune can use: its scheme is a database's or a tracking server's."""
    if uri in ("databricks", "databricks-uc"):
        return True
    match = SCHEME.match(uri)
    if match is None:
        return False
    scheme = match[1].lower()
    return scheme in SERVER_SCHEMES or scheme.split("+")[0] in DATABASE_KINDS
