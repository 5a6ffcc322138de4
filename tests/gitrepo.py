"""Real Git repositories for tests: ``git(repo, *args)`` runs git there with a fixed author."""

import os
import subprocess
from pathlib import Path

_AUTHOR = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}


def git(repo: Path, *args: str) -> str:
    """Run ``git -C repo args`` and return its stripped stdout; a failure raises."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **_AUTHOR},
        check=True,
    ).stdout.strip()
