"""Trust covers what runs: a folder runs as the user's own code only when every file and
folder a step executes, the folders above it and where its links lead belong to the user or
root and no one else may write them (:class:`ckg.run.trust.Ownership`). Each attack is set
up for real: files given to ``other_user`` with ``chown``, and that user changing them
through a process of its own, in a folder it can reach (``/tmp`` is sticky, and each test
makes its own public folder there)."""

import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from ckg.core.errors import RunFailed
from ckg.run.trust import trust_source

EVIL = "id -u > {marker}\n"


@pytest.fixture
def public(tmp_path):
    """A folder of the user's that every user may enter (tmp_path's parents are closed)."""
    folder = Path(tempfile.mkdtemp(prefix="ckg-trust-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _script(
    root: Path, alias: str, meta: str, run_sh: str | None = None, customize: str | None = None
) -> Path:
    folder = root / "script" / alias
    folder.mkdir(parents=True)
    (folder / "_cm.yaml").write_text(textwrap.dedent(meta))
    if run_sh is not None:
        (folder / "run.sh").write_text("#!/bin/bash\n" + run_sh)
    if customize is not None:
        (folder / "customize.py").write_text(textwrap.dedent(customize))
    return folder


def _repo(root: Path) -> Path:
    """A CM repository with one script, ``app``, whose run.sh says hello."""
    root.mkdir(mode=0o755)
    (root / "cmr.yaml").write_text("alias: trust-repo\nuid: 7000000000000001\n")
    _script(
        root,
        "app",
        """
        alias: app
        uid: 7000000000000002
        automation_alias: script
        tags: [app, trust]
        """,
        "echo hello\n",
    )
    return root


def _as_other(other_user, command: str) -> None:
    done = other_user.run(["sh", "-c", command])
    assert done.returncode == 0, done.stderr


def test_a_subfolder_of_another_user_does_not_run_as_ones_own(kg, public, other_user):
    root = _repo(public / "repo")
    kg.ingest(str(root))
    assert kg.run("app").runs[0].status == "ok"  # all the user's own: runs
    app = root / "script" / "app"
    os.chown(app, other_user.uid, other_user.gid)  # the top stays root's
    marker = public / "ran-as"
    _as_other(
        other_user, f"rm -f {app}/run.sh && printf '{EVIL.format(marker=marker)}' > {app}/run.sh"
    )
    with pytest.raises(
        RunFailed,
        match=re.escape(
            f"app comes from {root}, which is not yours alone: {app} is owned by uid "
            f"{other_user.uid}; "
        ),
    ):
        kg.run("app")
    assert not marker.exists()
    assert kg.run("app", trust=True).runs[0].status == "ok"  # this once, when told to
    assert marker.read_text().strip() == str(os.getuid())


def test_a_group_writable_folder_does_not_run_as_ones_own(kg, public, other_user):
    folder = public / "wf"
    folder.mkdir()
    (folder / "step.sh").write_text("echo hello\n")
    (folder / "ckg.yaml").write_text("alias: shared-wf\nrun: 'sh {artifact_dir}/step.sh'\n")
    kg.ingest(str(folder))
    os.chown(folder, 0, other_user.gid)  # a group the other user is in
    os.chmod(folder, 0o775)
    marker = public / "ran-as"
    _as_other(
        other_user,
        f"rm -f {folder}/step.sh && printf '{EVIL.format(marker=marker)}' > {folder}/step.sh",
    )
    with pytest.raises(
        RunFailed, match=re.escape(f"{folder} is writable by group {other_user.gid} (mode 0775)")
    ):
        kg.run("shared-wf")
    assert not marker.exists()


def test_a_link_to_another_users_file_does_not_run_as_ones_own(kg, public, other_user):
    root = _repo(public / "repo")
    kg.ingest(str(root))
    theirs = other_user.home / "run.sh"
    _as_other(other_user, f"echo 'echo hello' > {theirs}")
    run_sh = root / "script" / "app" / "run.sh"
    run_sh.unlink()
    run_sh.symlink_to(theirs)  # the folder and the link are root's; what it leads to is not
    marker = public / "ran-as"
    _as_other(other_user, f"printf '{EVIL.format(marker=marker)}' > {theirs}")
    with pytest.raises(
        RunFailed,
        match=re.escape(
            f"{other_user.home} is owned by uid {other_user.uid} (through the link {run_sh})"
        ),
    ):
        kg.run("app")
    assert not marker.exists()


def test_a_folder_inside_another_users_folder_does_not_run_as_ones_own(kg, public, other_user):
    theirs = public / "theirs"
    theirs.mkdir(mode=0o755)
    root = _repo(theirs / "repo")  # root's own, but its parent may be renamed by the other
    os.chown(theirs, other_user.uid, other_user.gid)
    kg.ingest(str(root))
    with pytest.raises(RunFailed, match=re.escape(f"{theirs} is owned by uid {other_user.uid}")):
        kg.run("app")


def test_a_script_that_customize_py_runs_is_checked_like_the_plan(kg, public, other_user):
    root = _repo(public / "repo")
    (root / "script" / "app" / "customize.py").write_text(
        "def preprocess(i):\n"
        "    r = i['automation'].action_object.access(\n"
        "        {'action': 'run', 'automation': 'script', 'tags': 'get,side', 'env': {}})\n"
        "    return r if r['return'] else {'return': 0}\n"
    )
    side = _script(
        root,
        "get-side",
        """
        alias: get-side
        uid: 7000000000000003
        automation_alias: script
        tags: [get, side]
        """,
        "echo side\n",
    )
    kg.ingest(str(root))
    assert [s.alias for s in kg.plan("app").steps] == ["app"]  # not in the plan
    os.chown(side, other_user.uid, other_user.gid)
    marker = public / "ran-as"
    _as_other(
        other_user, f"rm -f {side}/run.sh && printf '{EVIL.format(marker=marker)}' > {side}/run.sh"
    )
    [result] = kg.run("app").runs
    assert result.status == "failed"
    assert f"{side} is owned by uid {other_user.uid}" in result.error
    assert not marker.exists()


def test_own_folders_run_without_trust(kg, public):
    """Below sticky /tmp, a folder of the user's with a link to a file of root's, and a folder
    writable by a group that holds no other user, run as they are."""
    root = _repo(public / "repo")
    (public / "shared.sh").write_text("echo shared\n")
    (root / "script" / "app" / "helper.sh").symlink_to(public / "shared.sh")
    os.chmod(root, 0o775)
    os.chown(root, os.getuid(), os.getgid())
    kg.ingest(str(root))
    assert kg.run("app").runs[0].status == "ok"


def test_git_config_others_may_write_runs_nothing_when_provenance_is_taken(public, other_user):
    """Provenance runs ``git status`` in a source's root, and git starts the program that
    ``core.fsmonitor`` names. A ``.git/config`` another user may write must not become a
    way to run code as the user: git is not run there, and never with a monitor."""
    from ckg.run.provenance import source_state

    root = _repo(public / "repo")
    assert (
        os.system(
            f"git -C {root} init -q && git -C {root} add -A && "
            f"git -C {root} -c user.name=t -c user.email=t@t commit -qm one"
        )
        == 0
    )
    assert len(source_state(root)["source_commit"]) == 40  # a checkout of one's own
    config = root / ".git" / "config"
    os.chmod(config, 0o666)
    marker = public / "fsmonitor-ran-as"
    _as_other(
        other_user, f"printf '[core]\\n\\tfsmonitor = \"id -u > {marker}; false\"\\n' >> {config}"
    )
    assert source_state(root) == {}
    assert not marker.exists(), "git ran the other user's fsmonitor as this user"
    os.chmod(config, 0o644)  # one's own again, the monitor still named: git runs, it does not
    assert len(source_state(root)["source_commit"]) == 40
    assert not marker.exists()


def test_a_link_in_a_trusted_git_source_to_another_users_file_does_not_run(kg, public, other_user):
    """Trust of a Git source is for the content reviewed, and a link's content is its text:
    ``run.sh -> /tmp/.../theirs.sh`` reviewed and trusted must not run whatever the other
    user later writes there. The source's copy is the user's own; the link leads out."""
    root = _repo(public / "repo")
    theirs = public / "theirs"
    theirs.mkdir()
    os.chown(theirs, other_user.uid, other_user.gid)
    script = theirs / "run.sh"
    _as_other(other_user, f"echo 'echo hello' > {script}")
    run_sh = root / "script" / "app" / "run.sh"
    run_sh.unlink()
    run_sh.symlink_to(script)
    assert (
        os.system(
            f"git -C {root} init -q && git -C {root} add -A && "
            f"git -C {root} -c user.name=t -c user.email=t@t commit -qm one"
        )
        == 0
    )
    kg.ingest(str(root))
    trust_source(kg.store, kg.home, str(root))
    marker = public / "ran-as"
    _as_other(other_user, f"printf '#!/bin/bash\\n{EVIL.format(marker=marker)}' > {script}")
    with pytest.raises(
        RunFailed,
        match=re.escape(
            f"app comes from {root} (git), whose copy leads to what is not yours alone: "
        ),
    ):
        kg.run("app")
    assert not marker.exists()
