"""What a command finds unchanged it does not take again, and every change is seen: a Git
checkout is verified without ``git`` while it and its upstream are as recorded, and the list
of installed distributions is kept per environment until a site folder changes.

Real repositories (``git init``), a real ``git`` on PATH behind a wrapper that logs each call,
and a real ``pip install`` of a package made in the test."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckg.formats.git import STATE_FILE, checkout, last_checkout
from ckg.run.checkouts import Checkouts
from ckg.run.provenance import PACKAGES_DIR, installed_packages
from tests.gitrepo import git

WORKFLOW = """\
alias: hello-run
uid: 5c0e0000000000bb
run: "{python} {artifact_dir}/hello.py"
"""


@pytest.fixture
def git_calls(tmp_path, monkeypatch) -> Path:
    """A log of every ``git`` command ckg spawns from now on (the real git runs them)."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True)
    bin_dir, log = tmp_path / "git-bin", tmp_path / "git-calls.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real.stdout.strip()} "$@"\n')
    wrapper.chmod(0o755)
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository with a workflow, two commits and a tag v1 on the first."""
    path = tmp_path / "repo"
    (path / "wf").mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "wf" / "ckg.yaml").write_text(WORKFLOW)
    (path / "wf" / "hello.py").write_text("print('one')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "one")
    git(path, "tag", "v1")
    (path / "wf" / "hello.py").write_text("print('two')\n")
    git(path, "commit", "-q", "-am", "two")
    return path


def _recorded(repo: Path | str, cache: Path, ref: str = "") -> Path:
    """The clone of ``repo`` (a path or URL) checked out until its record is written (a
    checkout within the clock tick of its own files is not recorded: it could not tell a
    change then)."""
    for _ in range(50):
        clone, _, _ = checkout(str(repo), ref, cache)
        if last_checkout(clone):
            return clone
        time.sleep(0.02)
    raise AssertionError("no checkout was recorded")


def _calls(log: Path) -> list[str]:
    calls = log.read_text().splitlines()
    log.write_text("")
    return calls


def test_an_unchanged_checkout_and_upstream_spawn_no_git(repo, tmp_path, git_calls):
    clone = _recorded(repo, tmp_path / "cache")
    head = git(repo, "rev-parse", "HEAD")
    _calls(git_calls)
    assert checkout(str(repo), "", tmp_path / "cache") == (clone, head, "")
    assert _calls(git_calls) == []
    record = clone / ".git" / STATE_FILE
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    assert last_checkout(clone)["dirty"] is False


def test_an_unchanged_file_url_upstream_spawns_no_git_and_a_new_commit_is_fetched(
    repo, tmp_path, git_calls
):
    url = repo.as_uri()
    clone = _recorded(url, tmp_path / "cache")
    head = git(repo, "rev-parse", "HEAD")
    _calls(git_calls)
    assert checkout(url, "", tmp_path / "cache") == (clone, head, url)
    assert _calls(git_calls) == []
    (repo / "wf" / "hello.py").write_text("print('three')\n")
    git(repo, "commit", "-q", "-am", "three")
    head = git(repo, "rev-parse", "HEAD")
    _calls(git_calls)
    assert checkout(url, "", tmp_path / "cache")[1] == head
    assert any(" fetch " in call for call in _calls(git_calls))
    # The record read before is not taken for the new one (records are read once each).
    assert last_checkout(_recorded(url, tmp_path / "cache"))["commit"] == head


def test_a_changed_file_in_the_checkout_is_noticed_even_with_its_size_and_mtime_kept(
    repo, tmp_path, git_calls
):
    clone = _recorded(repo, tmp_path / "cache")
    script = clone / "wf" / "hello.py"
    before = script.stat()
    script.write_text("print('six')\n")  # the same size
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    _calls(git_calls)
    checkout(str(repo), "", tmp_path / "cache")
    assert any(" checkout " in call for call in _calls(git_calls))
    assert script.read_text() == "print('two')\n"


@pytest.mark.parametrize("within", [(), ("wf",)], ids=["whole", "within"])
@pytest.mark.parametrize(
    "change", ["new file", "new folder", "renamed file", "removed file", "mode", "index", "HEAD"]
)
def test_each_kind_of_change_to_the_checkout_is_noticed(repo, tmp_path, git_calls, change, within):
    clone = _recorded(repo, tmp_path / "cache")
    script = clone / "wf" / "hello.py"
    if change == "new file":
        (clone / "wf" / "extra.py").write_text("")
    elif change == "new folder":  # only the listing of wf changes, and wf's times
        (clone / "wf" / "more").mkdir()
    elif change == "renamed file":  # the same inode, size and times under another name
        script.rename(clone / "wf" / "renamed.py")
    elif change == "removed file":
        script.unlink()
    elif change == "mode":
        script.chmod(0o700)
    elif change == "index":
        git(clone, "rm", "-q", "--cached", "wf/hello.py")
    else:
        (clone / ".git" / "HEAD").write_text("ref: refs/heads/nowhere\n")
    _calls(git_calls)
    _, commit, _ = checkout(str(repo), "", tmp_path / "cache", within)
    assert _calls(git_calls), f"a {change} was not noticed"
    assert commit == git(repo, "rev-parse", "HEAD")
    assert script.read_text() == "print('two')\n" and not (clone / "wf" / "extra.py").exists()
    assert not (clone / "wf" / "more").exists() and not (clone / "wf" / "renamed.py").exists()
    assert git(clone, "status", "--porcelain") == ""


def test_a_checkout_within_folders_is_told_by_their_entries_alone(repo, tmp_path, git_calls):
    """A change outside the folders a run uses spawns no git; one inside them, even with the
    file's size and mtime kept, is noticed and undone."""
    cache = tmp_path / "cache"
    clone = _recorded(repo, cache)
    (clone / "notes").mkdir()
    (clone / "notes" / "todo.txt").write_text("elsewhere\n")
    head = git(repo, "rev-parse", "HEAD")
    _calls(git_calls)
    assert checkout(str(repo), "", cache, ("wf",)) == (clone, head, "")
    assert _calls(git_calls) == []
    checkout(str(repo), "", cache)  # the whole work tree: the new folder is seen
    assert _calls(git_calls) and not (clone / "notes").exists()

    clone = _recorded(repo, cache)
    script = clone / "wf" / "hello.py"
    before = script.stat()
    script.write_text("print('six')\n")
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    _calls(git_calls)
    checkout(str(repo), "", cache, ("wf",))
    assert any(" checkout " in call for call in _calls(git_calls))
    assert script.read_text() == "print('two')\n"


def test_the_state_of_a_folder_outside_those_checked_is_asked_of_git(repo, tmp_path, git_calls):
    """What a checkout's record says of its state holds for the folders found unchanged;
    of another (a script a hook runs that no step planned), git is asked."""
    clone = _recorded(repo, tmp_path / "cache")
    (clone / "wf" / "hello.py").write_text("print('changed')\n")
    checkouts = Checkouts(None, tmp_path)
    known = {"source_commit": git(repo, "rev-parse", "HEAD"), "source_dirty": False}
    checkouts.states[str(clone)], checkouts.within[str(clone)] = dict(known), ("wf",)
    _calls(git_calls)
    assert checkouts.state(str(clone), clone / "wf") == known
    assert _calls(git_calls) == []
    checkouts.within[str(clone)] = ("f",)  # a folder whose name ends another's
    assert checkouts.state(str(clone), clone / ".f") == {**known, "source_dirty": True}
    assert _calls(git_calls)


def test_a_new_commit_upstream_is_noticed(repo, tmp_path, git_calls):
    _recorded(repo, tmp_path / "cache")
    (repo / "wf" / "hello.py").write_text("print('three')\n")
    git(repo, "commit", "-q", "-am", "three")
    clone, commit, _ = checkout(str(repo), "", tmp_path / "cache")
    assert commit == git(repo, "rev-parse", "HEAD")
    assert (clone / "wf" / "hello.py").read_text() == "print('three')\n"


def test_a_changed_ref_upstream_is_noticed(repo, tmp_path, git_calls):
    clone = _recorded(repo, tmp_path / "cache", "v1")
    assert (clone / "wf" / "hello.py").read_text() == "print('one')\n"
    git(repo, "tag", "-f", "v1", "main")  # the tag moved
    assert checkout(str(repo), "v1", tmp_path / "cache")[1] == git(repo, "rev-parse", "main")
    assert (clone / "wf" / "hello.py").read_text() == "print('two')\n"

    _recorded(repo, tmp_path / "cache")
    git(repo, "checkout", "-q", "-b", "other", "v1~0")
    git(repo, "commit", "-q", "--allow-empty", "-m", "other")  # the default branch is other
    git(repo, "pack-refs", "--all")  # and its refs are packed now
    assert checkout(str(repo), "", tmp_path / "cache")[1] == git(repo, "rev-parse", "other")


def test_a_record_of_another_form_is_checked_by_git(repo, tmp_path, git_calls):
    """A record whose paths and folders are not a list and a map (another version's) is no
    record: git checks the copy and a record of this form replaces it."""
    clone = _recorded(repo, tmp_path / "cache")
    record = json.loads((clone / ".git" / STATE_FILE).read_text())
    record.update(paths="\n".join(record["paths"]), folders="")
    (clone / ".git" / STATE_FILE).write_text(json.dumps(record))
    assert last_checkout(clone) is None
    _calls(git_calls)
    assert checkout(str(repo), "", tmp_path / "cache", ("wf",))[1] == record["commit"]
    assert _calls(git_calls)
    assert isinstance(last_checkout(_recorded(repo, tmp_path / "cache"))["paths"], list)


def test_a_file_changed_after_the_record_was_made_is_never_taken_as_unchanged(
    repo, tmp_path, git_calls
):
    """A file whose times are not older than the record itself (a change in the same clock
    tick as the record, here a time set ahead, which git's index is told of so that git
    leaves the file as it is) is not recorded as unchanged."""
    clone, _, _ = checkout(str(repo), "", tmp_path / "cache")
    ahead = time.time_ns() + 60 * 10**9
    os.utime(clone / "wf" / "hello.py", ns=(ahead, ahead))
    git(clone, "update-index", "-q", "--refresh")
    (clone / ".git" / STATE_FILE).unlink(missing_ok=True)
    _calls(git_calls)
    checkout(str(repo), "", tmp_path / "cache")
    assert _calls(git_calls)
    assert last_checkout(clone) is None


def test_a_run_from_an_unchanged_git_source_spawns_no_git(kg, repo, git_calls):
    kg.ingest(str(repo))
    kg.run("hello-run", trust=True)
    _calls(git_calls)
    [done] = kg.run("hello-run", trust=True).runs
    assert done.status == "ok" and "two" in done.log_tail
    assert _calls(git_calls) == []
    run = kg.show_run(done.uid)["run"]
    assert run["source_commit"] == git(repo, "rev-parse", "HEAD")
    assert run["source_dirty"] is False


def test_a_run_from_a_checkout_changed_elsewhere_spawns_no_git(kg, repo, git_calls):
    """A change in the checkout outside the folders of the run's steps is not its code: the
    run spawns no git and records the commit; a change inside them is undone first."""
    kg.ingest(str(repo))
    kg.run("hello-run", trust=True)
    clone = next((kg.home / "cache" / "git").iterdir())
    (clone / "notes.txt").write_text("not the workflow's\n")
    head = git(repo, "rev-parse", "HEAD")
    _calls(git_calls)
    [done] = kg.run("hello-run", trust=True).runs
    assert done.status == "ok" and _calls(git_calls) == []
    run = kg.show_run(done.uid)["run"]
    assert (run["source_commit"], run["source_dirty"]) == (head, False)
    (clone / "wf" / "hello.py").write_text("print('changed')\n")
    [done] = kg.run("hello-run", trust=True).runs
    assert "two" in done.log_tail and _calls(git_calls)


def test_a_run_from_an_unchanged_file_url_source_spawns_no_git(kg, repo, git_calls):
    kg.ingest(repo.as_uri())
    kg.run("hello-run", trust=True)
    _calls(git_calls)
    [done] = kg.run("hello-run", trust=True).runs
    assert done.status == "ok" and "two" in done.log_tail
    assert _calls(git_calls) == []


def test_a_script_whose_hooks_ran_leaves_its_checkout_unchanged(
    kg, tmp_path, git_calls, monkeypatch
):
    """A script's customize.py is imported from the source's copy: Python would leave its
    __pycache__ there, a change the next run would have git check and clean again."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    path = tmp_path / "scripts"
    folder = path / "script" / "hello-hook"
    folder.mkdir(parents=True)
    (folder / "meta.yaml").write_text(
        "alias: hello-hook\nuid: 5c0e0000000000cc\nautomation_alias: script\ntags: [hello, hook]\n"
    )
    (folder / "customize.py").write_text("def preprocess(i):\n    return {'return': 0}\n")
    (folder / "run.sh").write_text("#!/bin/bash\necho hooked\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "one")
    kg.ingest(str(path))
    for _ in range(2):
        [done] = kg.run("hello,hook", trust=True).runs
        assert done.status == "ok"
    _calls(git_calls)
    [done] = kg.run("hello,hook", trust=True).runs
    assert done.status == "ok" and _calls(git_calls) == []
    assert not list((kg.home / "cache" / "git").rglob("__pycache__"))


def test_a_new_or_removed_package_is_noticed(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    package = tmp_path / "tinypkg"
    (package / "tinypkg_ckg").mkdir(parents=True)
    (package / "tinypkg_ckg" / "__init__.py").write_text("")
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinypkg-ckg"\nversion = "1.2"\n'
    )
    monkeypatch.syspath_prepend(str(site))
    home = tmp_path / "home"
    home.mkdir(mode=0o700)

    def kept() -> list[list[str]]:
        """The lists kept in ``home``."""
        return [json.loads(p.read_text())["packages"] for p in (home / PACKAGES_DIR).glob("*")]

    def pip(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(site)},
        )

    time.sleep(2.1)  # a folder changed less than 2 s ago may change again unseen: not kept
    first = installed_packages(home)
    assert not any(p.startswith("tinypkg-ckg==") for p in first) and kept() == [first]
    pip(
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(site),
        str(package),
    )
    assert "tinypkg-ckg==1.2" in installed_packages(home)
    time.sleep(2.1)
    second = installed_packages(home)
    assert "tinypkg-ckg==1.2" in second and second in kept()
    # What pip uninstall does (it leaves a --target folder alone): the files go.
    for installed in site.iterdir():
        shutil.rmtree(installed)
    assert installed_packages(home) == first
    assert oct((home / PACKAGES_DIR).stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in (home / PACKAGES_DIR).glob("*"))
