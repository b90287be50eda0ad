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


def credentials_in(uri: str) -> list[str]:
    """The environment variables to set instead of what `uri` carries; [] when it carries none."""
    if "://" not in uri:
        return []
    variables = []
    if PASSWORD_IN_USER_PART.match(uri):
        variables += ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    query = parse_qs(urlsplit(uri).query)
    variables += [variable for option, variable in QUERY_SECRETS.items() if option in query]
    return list(dict.fromkeys(variables))
