"""Plans remembered under ``CKG_HOME``, keyed by everything the planner reads.

Planning is a pure function of the fetched subgraph rows, the target, the variations, the
environment and the planner's own code. The key is a digest of all of them (the code by the
size and modification time of each ``ckg/plan`` and ``ckg/mlc`` module), so a changed meta,
dependency edge, ``--env``, planner or rule gives a new key and a fresh plan. A hit skips
NetworkX altogether, whose import alone costs about 0.15 s of a whole ``ckg run`` process.
At most :data:`KEEP` plans are kept; the oldest go first. The user's secrets are not in the
files: placeholders stand for them, filled again from the environment the key was made of
(:func:`ckg.core.redact.seal`).
"""

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ckg.core.redact import seal, unseal
from ckg.plan.model import Plan, Step

FOLDER = "plans"
KEEP = 256

_code_stamp: list | None = None


def plan_key(
    rows: tuple,
    uid: str,
    variations: Iterable[str],
    env: Mapping | None,
    adr: Mapping | None = None,
) -> str:
    """Digest of the planner's inputs: subgraph rows, target uid, variations, env, the
    user's ``add_deps_recursive``, code.

    >>> plan_key(([], [], []), "a", (), {}) == plan_key(([], [], []), "a", (), None)
    True
    >>> plan_key(([], [], []), "a", (), {"X": "1"}) == plan_key(([], [], []), "a", (), {})
    False
    """
    text = json.dumps(
        [_planner_code(), uid, list(variations), dict(env or {}), dict(adr or {}), rows],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load(home: Path, key: str, secrets: tuple[str, ...] = ()) -> Plan | None:
    """The plan saved under ``key``, with the ``secrets`` it was saved with, or None (also
    for an unreadable file)."""
    try:
        text = (Path(home) / FOLDER / f"{key}.json").read_text(encoding="utf-8")
        data = json.loads(unseal(text, secrets))
        metas = data.pop("metas", {})
        steps = [Step(**{"meta": metas.get(step["uid"]), **step}) for step in data.pop("steps")]
        return Plan(steps=steps, **data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save(home: Path, key: str, plan: Plan, secrets: tuple[str, ...] = ()) -> None:
    """Save ``plan`` under ``key`` (write then rename: a reader never sees half a file),
    with placeholders for ``secrets`` (:func:`ckg.core.redact.seal`): the values of the user's
    environment that the key was made of, which :func:`load` is given again."""
    folder = Path(home) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    partial = folder / f".{key}.{os.getpid()}"
    data = plan.to_dict(with_meta=True)
    # Each artifact's meta once: the steps of one artifact (one per set of variations) share
    # it, and a plan of 23 steps would otherwise be read back from 340 kB instead of 45.
    data["metas"] = {}
    for step in data["steps"]:
        if data["metas"].setdefault(step["uid"], step["meta"]) == step["meta"]:
            del step["meta"]
    text = json.dumps(data, ensure_ascii=False)
    partial.write_text(seal(text, secrets), encoding="utf-8")
    os.replace(partial, path)
    _prune(folder)


def _prune(folder: Path) -> None:
    files = list(folder.glob("*.json"))
    if len(files) <= KEEP:
        return
    stamped = []
    for path in files:
        try:
            stamped.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue  # removed by another process meanwhile
    for _, path in sorted(stamped)[: len(stamped) - KEEP // 2]:
        path.unlink(missing_ok=True)


def _planner_code() -> list:
    global _code_stamp
    if _code_stamp is None:
        here = Path(__file__).parent  # the planner and the rule book it follows (ckg/mlc)
        modules = []
        # Listed, not globbed: Path.glob compiles its pattern in each command the resident
        # process forks (1.6 ms in all, 0.6 ms listed).
        for folder in (here, here.parent / "mlc"):
            with os.scandir(folder) as listing:
                modules += [entry.path for entry in listing if entry.name.endswith(".py")]
        _code_stamp = [
            (path, (info := os.stat(path)).st_mtime_ns, info.st_size) for path in sorted(modules)
        ]
    return _code_stamp
