"""Credentials a storage URI may carry (a password in its user part, pyarrow's S3 key options in
its query). A study's storage reaches its MLflow tags, its logs and Ray's pickled searcher state,
so credentials come from the environment only."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote_plus, urlsplit

# pyarrow's S3 URI options that carry a secret, and the variables that replace them
QUERY_SECRETS = {
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}
# query options that carry a password or a token, whatever the scheme: never shown
SECRET_QUERY_OPTIONS = (*QUERY_SECRETS, "password", "token", "access_token")
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# pyarrow's S3 option that names another endpoint: a URL or `host:port`, which could carry a user part
ENDPOINT_OPTION = "endpoint_override"


# a database's password in the user part: libpq's and MySQL's own places for it
DATABASE_PASSWORD_PLACES = {
    "postgresql": ["PGPASSWORD", "a ~/.pgpass file"],
    "postgres": ["PGPASSWORD", "a ~/.pgpass file"],
    "mysql": ["a MySQL option file (~/.my.cnf)"],
}


# an MLflow tracking server's: what its client reads from the environment
HTTP_CREDENTIALS = ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]


def _scheme(uri: str) -> str | None:
    match = SCHEME.match(uri)
    return match[1].split("+")[0].lower() if match else None


def user_part(uri: str) -> str | None:
    """What `uri` carries before its host (`user` or `user:password`), None without one. A
    database URL's password may hold '/' and '@' (SQLAlchemy reads up to the last '@' before the
    query); elsewhere the user part ends at the first '/', '?' or '#', as URLs have it, unless
    what comes before that '/' is `user:word`, not `host:port` (nor `host:`, an empty port): then a
    password with a '/' in it."""
    scheme = _scheme(uri)
    if scheme is None:
        return None
    rest = uri[uri.index("://") + 3 :]
    before_query = re.split(r"[?#]", rest)[0]
    authority = re.split(r"[/?#]", rest)[0]
    _, colon, port = authority.partition(":")
    if scheme in DATABASE_PASSWORD_PLACES or (
        "@" not in authority and colon and port and not port.isdigit() and authority[:1] != "["
    ):
        authority = before_query
    user, at, _ = authority.rpartition("@")
    return user if at else None


def credentials_in(uri: str) -> list[str]:
    """The environment variables (or files) to use instead of what `uri` carries; [] when it
    carries none."""
    scheme = _scheme(uri)
    if scheme is None:
        return []
    http = scheme in ("http", "https")
    places = DATABASE_PASSWORD_PLACES.get(scheme) or (
        HTTP_CREDENTIALS if http else ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    )
    variables = []
    if ":" in (user_part(uri) or ""):
        variables += places
    query = parse_qs(urlsplit(uri).query)
    if any(_endpoint_has_user(endpoint) for endpoint in query.get(ENDPOINT_OPTION, [])):
        variables += ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    variables += [variable for option, variable in QUERY_SECRETS.items() if option in query]
    if "password" in query:
        variables += places
    if "token" in query or "access_token" in query:
        variables += ["MLFLOW_TRACKING_TOKEN"] if http else places
    return list(dict.fromkeys(variables))


def without_credentials(uri: str, keep_user: bool = False) -> str:
    """`uri` for messages: its user part as `***` (`user:***` with `keep_user`: it names the role
    to check), and the values of its secret query options as `***`."""
    user = user_part(uri)
    if user is not None:
        start = uri.index("://") + 3
        name, colon, _ = user.partition(":")
        hidden = (f"{name}:***" if colon else name) if keep_user else "***"
        uri = uri[:start] + hidden + uri[start + len(user) :]
    return _query_hidden(uri)


def _query_hidden(uri: str) -> str:
    """`uri` with the value of each secret query option as `***`, and of an `endpoint_override`
    that carries a user part; option names are read decoded (`secret%5Fkey` is `secret_key`)."""
    start, question, rest = uri.partition("?")
    if not question:
        return uri
    query, hash_mark, fragment = rest.partition("#")
    options = []
    for option in query.split("&"):
        name, _, value = option.partition("=")
        key = unquote_plus(name)
        if key in SECRET_QUERY_OPTIONS or (key == ENDPOINT_OPTION and _endpoint_has_user(unquote_plus(value))):
            option = f"{name}=***"
        options.append(option)
    return f"{start}?{'&'.join(options)}{hash_mark}{fragment}"


def _endpoint_has_user(endpoint: str) -> bool:
    """Whether an `endpoint_override` value (decoded) carries a user part: `http://user:pw@host`,
    or `user:pw@host:port` without a scheme."""
    return user_part(endpoint if SCHEME.match(endpoint) else f"http://{endpoint}") is not None


def credentials_advice(uri: str) -> str | None:
    """What to do instead of putting credentials in `uri`; None when it carries none."""
    variables = credentials_in(uri)
    if not variables:
        return None
    if variables[0].startswith(("AWS_", "MLFLOW_")):
        return f"set {' and '.join(variables)} in the environment instead"
    return f"give the password through {' or '.join(variables)} instead"
