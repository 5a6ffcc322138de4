"""Configuration: flags first, then the environment, then defaults.

``CKG_HOME``   ckg's own folder (embedded database, caches, journal). Default:
               ``$XDG_DATA_HOME/.ckg``, that is ``~/.local/share/.ckg`` on most systems.
``CKG_DB``     ``embedded`` or a Neo4j URI; ``NEO4J_URI`` is read when it is unset.
``NEO4J_USERNAME`` / ``NEO4J_PASSWORD``  Neo4j credentials; never written anywhere.
"""

import os
from pathlib import Path

from ckg.errors import StoreUnavailable


def home() -> Path:
    """ckg's home folder, created if missing; raises StoreUnavailable if it cannot be."""
    configured = os.environ.get("CKG_HOME")
    if configured:
        path = Path(configured).expanduser()
    else:
        data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(data) / ".ckg"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StoreUnavailable(f"CKG_HOME {path} cannot be written: {exc.strerror}") from None
    return path


def db_uri() -> str:
    """The database named by ``CKG_DB``, else ``NEO4J_URI``, else ``embedded``."""
    return os.environ.get("CKG_DB") or os.environ.get("NEO4J_URI") or "embedded"


def neo4j_auth() -> tuple[str, str] | None:
    """Neo4j credentials from the environment, or None to connect without authentication."""
    user = os.environ.get("NEO4J_USERNAME")
    password = os.environ.get("NEO4J_PASSWORD")
    if user is None and password is None:
        return None
    return (user or "neo4j", password or "")
