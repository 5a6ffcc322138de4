"""ckg.formats.git: Git repositories fetched shallow into the cache through open_source."""

from pathlib import Path

import pytest

from ckg.core.errors import InvalidInput
from ckg.formats.sources import open_source, source_uid
from tests.gitrepo import git

META = b"alias: hello\nuid: 0123456789abcdef\ntags: [hello, demo]\n"


@pytest.fixture
def repo(tmp_path) -> Path:
    """A Git repository with two commits; tag v1 on the first."""
    path = tmp_path / "repo"
    (path / "script" / "hello").mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "script" / "hello" / "_cm.yaml").write_bytes(META)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "one")
    git(path, "tag", "-a", "v1", "-m", "first")
    (path / "script" / "hello" / "_cm.yaml").write_bytes(META + b"cache: true\n")
    git(path, "commit", "-q", "-am", "two")
    return path


def test_local_git_repo_is_fetched_shallow_with_commit_recorded(tmp_path, repo):
    tree = open_source(repo, cache=tmp_path / "cache")
    head = git(repo, "rev-parse", "HEAD")
    assert (tree.kind, tree.commit, tree.digest, tree.location) == ("git", head, head, str(repo))
    assert tree.root.is_relative_to(tmp_path / "cache" / "git")
    assert git(tree.root, "rev-list", "--count", "HEAD") == "1"
    assert (tree.root / "script" / "hello" / "_cm.yaml").read_bytes().endswith(b"cache: true\n")
    assert ".git" not in {p.name for p in (e for e in tree.files())}


def test_git_ref_picks_tag_branch_or_commit(tmp_path, repo):
    first = git(repo, "rev-parse", "v1^{commit}")
    by_tag = open_source(repo, ref="v1", cache=tmp_path / "cache")
    assert by_tag.commit == first and by_tag.uid != source_uid(str(repo))
    assert (by_tag.root / "script" / "hello" / "_cm.yaml").read_bytes() == META
    by_commit = open_source(repo, ref=first, cache=tmp_path / "cache")
    assert by_commit.commit == first
    assert open_source(repo, ref="main", cache=tmp_path / "cache").commit == git(
        repo, "rev-parse", "HEAD"
    )


def test_git_fetch_updates_the_cache_after_a_new_commit(tmp_path, repo):
    open_source(repo, cache=tmp_path / "cache")
    (repo / "script" / "hello" / "_cm.yaml").write_bytes(META + b"cache: false\n")
    git(repo, "commit", "-q", "-am", "three")
    tree = open_source(repo, cache=tmp_path / "cache")
    assert tree.commit == git(repo, "rev-parse", "HEAD")
    assert (tree.root / "script" / "hello" / "_cm.yaml").read_bytes().endswith(b"cache: false\n")


def test_unknown_git_ref_is_one_clear_error(tmp_path, repo):
    with pytest.raises(InvalidInput, match="git .* failed"):
        open_source(repo, ref="no-such-branch", cache=tmp_path / "cache")


def test_a_bare_repository_path_reads_like_its_file_url(tmp_path, repo):
    bare = tmp_path / "served" / "repo.git"
    bare.parent.mkdir()
    git(repo, "clone", "-q", "--bare", str(repo), str(bare))
    by_path = open_source(str(bare), cache=tmp_path / "cache-a")
    by_url = open_source(bare.as_uri(), cache=tmp_path / "cache-b")
    assert by_path.kind == by_url.kind == "git"
    assert by_path.commit == by_url.commit == git(repo, "rev-parse", "HEAD")
    files = sorted(
        p.relative_to(by_path.root).as_posix()
        for p in by_path.root.rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
    assert files and files == sorted(
        p.relative_to(by_url.root).as_posix()
        for p in by_url.root.rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
