"""``ckg completion``: the script it prints, sourced in a real bash, completes through real
``ckg`` processes, commands whose modules the completing process had not loaded included."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CKG = str(Path(sys.executable).with_name("ckg"))
# The ckg of this interpreter first on PATH: the script calls ckg back by name.
ENV = {**os.environ, "PATH": f"{Path(CKG).parent}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def bash_script() -> str:
    done = subprocess.run([CKG, "completion", "bash"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout


def bash_completions(script: str, line: str) -> list[str]:
    """What bash offers for the last word of ``line`` (``""`` after a trailing space), as the
    Tab key would: the sourced script's completion function with bash's COMP_* variables."""
    if not shutil.which("bash"):
        pytest.skip("no bash")
    words = line.split() + ([""] if line.endswith(" ") else [])
    shell = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_ckg_completion ckg; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", shell], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_a_command_name(bash_script):
    assert bash_completions(bash_script, "ckg fi") == ["find"]


def test_bash_completes_the_commands_of_a_group_and_a_commands_options(bash_script):
    assert bash_completions(bash_script, "ckg results l") == ["list"]
    assert bash_completions(bash_script, "ckg find --t") == ["--tags"]
    assert bash_completions(bash_script, "ckg completion ") == ["bash", "zsh"]


def test_zsh_gets_each_command_with_its_help():
    # The zsh script sends the words as the bash one does; no zsh is needed to ask ckg.
    script = subprocess.run([CKG, "completion", "zsh"], capture_output=True, text=True, env=ENV)
    assert "compdef _ckg_completion ckg" in script.stdout
    asked = {**ENV, "COMP_WORDS": "ckg de", "COMP_CWORD": "1", "_CKG_COMPLETE": "zsh_complete"}
    done = subprocess.run([CKG], capture_output=True, text=True, env=asked)
    kind, name, help_, *more = done.stdout.splitlines()
    assert (kind, name) == ("plain", "deps")
    assert help_.startswith("Print the dependency tree of an artifact")
    assert more[:2] == ["plain", "demo"]


def test_an_unknown_shell_is_refused_in_one_line():
    done = subprocess.run([CKG, "completion", "fish"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 2
    assert "'fish' is not one of 'bash', 'zsh'" in done.stderr
