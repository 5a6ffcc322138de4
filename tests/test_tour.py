"""The README's tour, run as a reader pastes it: every command of the ``console`` blocks under
"## A tour", verbatim and in order, from the root of a fresh copy of the examples, in a new
home (``HOME`` a new folder, no ``CKG_*`` but ``CKG_CORPORA``) with the venv's ``ckg`` on
``PATH``. Each must exit 0 and print (stdout and stderr, as a terminal shows them) what the
README shows under it.

How the README shows a step: a line ``$ COMMAND``, then the output. ``...`` alone on a line
stands for any number of lines, and inside a line for any text. Before comparing, both sides
lose what differs from run to run by nature: ids (8 or more hex digits), dates with a time,
durations (``0.3 s``, ``12 ms``), blank lines, and the width of spaces and table rules
(column widths follow the numbers). Output is 100 columns wide (``COLUMNS``).

Steps that read the shared corpora use ``$CKG_CORPORA``; without the corpora the tour stops
there with a skip, after every step before them has passed.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.cli.resident import stop as stop_resident
from ckg.store.server import stop_server
from tests.test_scripts_mlcflow import _logged_result

REPO = Path(__file__).resolve().parents[1]
PROMPT = "$ "
#: Masked on both sides: what differs between two runs of the same command.
VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8,}\b"), "<id>"),
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:min|ms|µs|s)\b"), "<duration>"),
    (re.compile(r"[─━═]+"), "─"),
    (re.compile(r"\s+"), " "),
]


def tour(readme: str) -> list[tuple[str, list[str]]]:
    """The tour's steps: each command with the output lines the README shows under it.

    >>> tour("# ckg\\n## A tour\\n```console\\n$ ckg a\\nout\\n...\\n$ ckg b\\n```\\n## Next\\n")
    [('ckg a', ['out', '...']), ('ckg b', [])]
    """
    section = readme.split("\n## A tour\n", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```console\n(.*?)^```", section, re.M | re.S):
        for line in block.splitlines():
            if line.startswith(PROMPT):
                steps.append((line[len(PROMPT) :], []))
            else:
                steps[-1][1].append(line)
    return steps


def normal(text: str) -> list[str]:
    """``text``'s non-blank lines, with what varies between runs masked (:data:`VARYING`)."""
    lines = []
    for line in text.splitlines():
        for pattern, mask in VARYING:
            line = pattern.sub(mask, line)
        if line.strip():
            lines.append(line.strip())
    return lines


def matches(expected: list[str], output: str) -> bool:
    """Whether ``output`` is what the README shows (``expected``), as the module says.

    >>> matches(["a ...", "...", "z"], "a 1\\n  b\\nc\\nz\\n"), matches(["a"], "a\\nb")
    (True, False)
    >>> matches(["┃ x ┃ ..."], "┃ x ┃y┃"), matches(["┃ x ┃ ..."], "┃ xy ┃")
    (True, False)
    >>> matches(["run run-1f2e3d4c5b ok 2.5 s"], "run  run-9a8b7c6d5e  ok  31 ms")
    True
    """
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line == "..." else
        ".*?".join(re.escape(part.strip()) for part in line.split("...")) + r"\n"
        for line in normal("\n".join(expected))
    )  # fmt: skip
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in normal(output))) is not None


def fresh_env(home: Path) -> dict[str, str]:
    """A clean environment with ``home`` as ``HOME`` and the venv's ``ckg`` on ``PATH``."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "LANG": "C.UTF-8",
        "COLUMNS": "100",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as a terminal shows them
        "CKG_REPLY_TIMEOUT": "120",  # a hung embedded server is replaced, not waited on
    }


def run_tour(steps, cwd: Path, env: dict[str, str], corpora) -> None:
    """Run ``steps`` in order in ``cwd`` with ``env``, failing at the first that exits non-zero
    or prints what its expected lines do not match; ``corpora()`` gives ``$CKG_CORPORA`` (or
    skips) when a step first names it."""
    for number, (command, expected) in enumerate(steps, 1):
        if "$CKG_CORPORA" in command and "CKG_CORPORA" not in env:
            env["CKG_CORPORA"] = str(corpora())
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            timeout=300,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        where = f"tour step {number}, `{command}`"
        assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stdout}"
        assert matches(expected, done.stdout), (
            f"{where} printed what the README does not show.\nREADME:\n"
            + "\n".join(expected)
            + f"\nprinted:\n{done.stdout}"
        )


@pytest.fixture
def home(tmp_path) -> Path:
    """A new ``HOME`` for a test's ``ckg`` commands; the resident process and the embedded
    server they started in its ckg home are stopped afterwards (the tour runs with a
    resident, as a reader's commands do)."""
    path = tmp_path / "home"
    yield path
    ckg_home = path / ".local" / "share" / ".ckg"
    stop_resident(ckg_home)
    stop_server(ckg_home)


def test_the_readme_tour_runs_as_written_from_a_fresh_clone(tmp_path, home, request):
    steps = tour((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(steps) >= 10, "the README's tour has lost its steps"
    clone = tmp_path / "ckg"
    shutil.copytree(REPO / "examples", clone / "examples")
    run_tour(steps, clone, fresh_env(home), lambda: request.getfixturevalue("corpora"))


def test_a_step_that_fails_or_prints_otherwise_fails_the_tour(tmp_path, home):
    env = fresh_env(home)
    with pytest.raises(AssertionError, match="tour step 2, `ckg versoin` exited 2"):
        run_tour([("ckg --version", ["ckg ..."]), ("ckg versoin", [])], tmp_path, env, None)
    with pytest.raises(AssertionError, match="step 1, `ckg --version` printed what the README"):
        run_tour([("ckg --version", ["ckg 0.0.0"])], tmp_path, env, None)


def test_lines_that_differ_in_what_the_readme_shows_do_not_match():
    assert not matches(
        ["7 runs, 0 dependency steps run, 0 cached"], "6 runs, 0 dependency steps run, 0 cached"
    )
    assert not matches(["accuracy ... 98.33 ..."], "accuracy 97.22 (%)")
    assert matches(
        ["│ model=knn k=1 │ 98.33 │ ... │"],
        "│ model=knn k=1         │    98.33 │    1.202 │   7.125 │",
    )


def test_the_example_scripts_run_alike_under_mlcr_and_ckg(tmp_path, home):
    # examples/mlc-scripts is a real MLCFlow repository: mlcr runs it, and gives the caller
    # the same new_env as ckg run.
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "mlcr").is_file():
        pytest.skip(f"mlcflow's mlcr is not installed beside {sys.executable}")
    repo = tmp_path / "mlc-scripts"
    shutil.copytree(REPO / "examples" / "mlc-scripts", repo)
    env = {**fresh_env(home), "MLC_REPOS": str(tmp_path / "mlc-repos")}
    tool = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 300}
    subprocess.run([bin_dir / "mlc", "add", "repo", str(repo)], check=True, **tool)
    mlcr = subprocess.run([bin_dir / "mlcr", "app,word-count,_large", "-j", "--quiet"], **tool)
    assert mlcr.returncode == 0, mlcr.stderr
    subprocess.run(["ckg", "ingest", str(repo)], check=True, **tool)
    ckg = subprocess.run(["ckg", "run", "app,word-count,_large", "--json"], **tool)
    assert ckg.returncode == 0, ckg.stdout + ckg.stderr
    new_env = json.loads(ckg.stdout)["runs"][0]["new_env"]
    assert new_env == _logged_result(mlcr.stderr)["new_env"]
    assert new_env == {"MLC_WORD_COUNT_DISTINCT": "11", "MLC_WORD_COUNT_TOP": "it"}
