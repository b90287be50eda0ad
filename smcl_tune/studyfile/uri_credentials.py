"""Credentials a storage URI may carry (a password in its user part, pyarrow's S3 key options in
its query). A study's storage reaches its MLflow tags, its logs and Ray's pickled searcher state,
so credentials come from the environment only."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

# pyarrow's S3 URI options that carry a secret, and the variables that replace them
QUERY_SECRETS = {
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}
PASSWORD_IN_USER_PART = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@?#]*:[^/@?#]*@")


# a database's password in the user part: libpq's and MySQL's own places for it
DATABASE_PASSWORD_PLACES = {
    "postgresql": ["PGPASSWORD", "a ~/.pgpass file"],
    "postgres": ["PGPASSWORD", "a ~/.pgpass file"],
    "mysql": ["a MySQL option file (~/.my.cnf)"],
}


def credentials_in(uri: str) -> list[str]:
    """The environment variables (or files) to use instead of what `uri` carries; [] when it
    carries none."""
    if "://" not in uri:
        return []
    variables = []
    if PASSWORD_IN_USER_PART.match(uri):
        scheme = uri.split("://", 1)[0].split("+")[0].lower()
        variables += DATABASE_PASSWORD_PLACES.get(scheme, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
    query = parse_qs(urlsplit(uri).query)
    variables += [variable for option, variable in QUERY_SECRETS.items() if option in query]
    return list(dict.fromkeys(variables))


def credentials_advice(uri: str) -> str | None:
    """What to do instead of putting credentials in `uri`; None when it carries none."""
    variables = credentials_in(uri)
    if not variables:
        return None
    if variables[0].startswith("AWS_"):
        return f"set {' and '.join(variables)} in the environment instead"
    return f"give the password through {' or '.join(variables)} instead"
