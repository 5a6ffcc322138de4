"""Values from the command line or a shared graph that would become options of another
program, a home planted by another local user, and numbers no graph can hold: each tried for
real, with real ``git`` repositories, real ``ckg`` processes and a real second account."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.gitrepo import git

INJECTED = "--upload-pack=touch {marker}"


def ckg(*args, env=None):
    """A real ``ckg`` process."""
    return subprocess.run(
        [sys.executable, "-c", "from ckg.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path) -> Path:
    """A Git repository with one ckg.yaml workflow, ``hello``."""
    path = tmp_path / "repo"
    path.mkdir()
    (path / "ckg.yaml").write_text('alias: hello\nuid: wf-hello\nrun: "echo ok"\n')
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "hello")
    return path


# --- option injection into git --------------------------------------------------------------


def test_git_ref_starting_with_dash_is_refused(ckg_home, tmp_path, repo):
    marker = tmp_path / "pwned"
    done = ckg("ingest", str(repo), "--ref", INJECTED.format(marker=marker))
    assert not marker.exists(), "git ran the injected --upload-pack"
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ckg: error: Git ref {INJECTED.format(marker=marker)!r} of {repo} refused: "
        "it starts with '-' (git would read it as an option)"
    ]


def test_git_ref_from_the_graph_starting_with_dash_is_refused(store, ckg_home, tmp_path, repo):
    for args in (["ingest", str(repo)], ["trust", str(repo)]):
        done = ckg(*args)
        assert done.returncode == 0, done.stderr
    marker = tmp_path / "pwned"
    injected = INJECTED.format(marker=marker)
    # Anyone who can write a shared graph can write a Source's ref.
    store.run("MATCH (s:Source) SET s.ref = $ref", {"ref": injected})
    done = ckg("run", "hello")
    assert not marker.exists(), "git ran the injected --upload-pack"
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ckg: error: Git ref {injected!r} of {repo} refused: "
        "it starts with '-' (git would read it as an option)"
    ]


def test_container_image_starting_with_dash_is_refused(ckg_home, repo):
    for args in (["ingest", str(repo)], ["trust", str(repo)]):
        assert ckg(*args).returncode == 0
    done = ckg("run", "hello", "--in-container", "--privileged", "--dry-run")
    assert "--privileged sh" not in done.stdout
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ckg: error: container image '--privileged' refused: it starts with '-' "
        "(docker would read it as an option)"
    ]


# --- a home planted by another local user ---------------------------------------------------


@pytest.fixture
def shared_tmp():
    """A world-writable sticky folder every user can reach, like /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="ckg-shared-"))
    os.chmod(folder, 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _plant(other_user, link: Path, target: Path) -> None:
    done = other_user.run(["ln", "-s", str(target), str(link)])
    assert done.returncode == 0, done.stderr


def test_home_planted_as_a_link_by_another_user_is_refused(other_user, shared_tmp):
    mine = shared_tmp / "mine"  # a folder of the victim's that the link points at
    mine.mkdir(mode=0o755)
    home = shared_tmp / "ckg-home"
    _plant(other_user, home, mine)
    done = ckg("db", "status", env={"CKG_HOME": str(home), "CKG_DB": "embedded"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ckg: error: {home} is a symbolic link of another user (uid {other_user.uid}): refused"
    ]
    assert os.listdir(mine) == [] and (os.stat(mine).st_mode & 0o777) == 0o755


def test_folder_above_a_new_home_planted_as_a_link_by_another_user_is_refused(
    other_user, shared_tmp
):
    theirs = shared_tmp / "theirs"  # the attacker's folder, writable by all
    made = other_user.python(
        f"import os; os.mkdir({str(theirs)!r}, 0o777); os.chmod({str(theirs)!r}, 0o777)"
    )
    assert made.returncode == 0, made.stderr
    _plant(other_user, shared_tmp / "projects", theirs)
    home = shared_tmp / "projects" / "ckg-home"
    done = ckg("db", "status", env={"CKG_HOME": str(home), "CKG_DB": "embedded"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ckg: error: {shared_tmp / 'projects'} is a symbolic link of another user "
        f"(uid {other_user.uid}): refused on the way to {home}"
    ]
    assert os.listdir(theirs) == []


def test_folder_planted_in_a_home_others_could_write_is_refused(other_user, shared_tmp):
    home = shared_tmp / "ckg-home"
    home.mkdir()
    home.chmod(0o777)  # as an older ckg under umask 0 left it
    theirs = shared_tmp / "theirs"
    made = other_user.python(
        f"import os; os.mkdir({str(theirs)!r}, 0o777); os.chmod({str(theirs)!r}, 0o777)"
    )
    assert made.returncode == 0, made.stderr
    _plant(other_user, home / "cache", theirs)  # every clone would land in their folder
    done = ckg("db", "status", env={"CKG_HOME": str(home), "CKG_DB": "embedded"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ckg: error: {home / 'cache'} belongs to another user (uid {other_user.uid}) and "
        f"{home} was writable by others: remove it"
    ]
    assert (os.stat(home).st_mode & 0o777) == 0o700  # closed at once


# --- numbers no graph can hold --------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["12345678901234567890", "-99999999999999999999", "[1, 12345678901234567890]"]
)
def test_integer_param_beyond_64_bits_is_refused(ckg_home, value):
    done = ckg("query", "RETURN $n AS n", "--param", f"n={value}", "--json")
    assert done.returncode == 2
    big = value.strip("[]").split(", ")[-1]
    assert done.stderr.splitlines() == [
        f"ckg: error: --param n: {big} does not fit the 64-bit integers a graph holds; "
        f"""pass it as text with n='"{big}"'"""
    ]


@pytest.mark.parametrize(
    "value, shown", [("1e999", "inf"), ("-1e999", "-inf"), ("NaN", "nan"), ("[1, Infinity]", "inf")]
)
def test_non_finite_param_is_refused(ckg_home, value, shown):
    done = ckg("query", "RETURN $x AS x", "--param", f"x={value}", "--json")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ckg: error: --param x: {shown} is not a finite number (JSON reads 1e999 as "
        f"""infinity); pass it as text with x='"..."'"""
    ]
