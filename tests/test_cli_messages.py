"""Messages that point the right way: a misspelt command suggested once, an empty folder
named, an unknown experiment called unknown (not 'no metrics')."""

import subprocess
import sys
from pathlib import Path

import pytest

from ckg.errors import NotFound

CKG = str(Path(sys.executable).with_name("ckg"))


def test_a_misspelt_command_is_suggested_once(ckg_home):
    for args, word in ((["ingst", "x"], "'ingest'"), (["db", "stauts"], "'status'")):
        done = subprocess.run([CKG, *args], capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stderr.count(f"Did you mean {word}?") == 1, done.stderr


def test_an_empty_folder_ingests_with_a_warning_naming_it(kg, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    for _ in range(2):  # the unchanged re-ingest says it again
        summary = kg.ingest(empty)
        assert summary.artifacts == 0
        assert [w.message for w in summary.warnings] == [
            f"{empty} holds no files: nothing to ingest (the right folder?)"]


def test_an_unknown_experiment_is_named_with_the_ones_there_are(kg):
    kg.store.upsert_nodes("Experiment", [
        {"key": "exp-1", "props": {"uid": "exp-1", "name": "sklearn-digits"}}])
    with pytest.raises(NotFound, match=r"no experiment 'sklearn-digitz' "
                                       r"\(experiments: sklearn-digits\)"):
        kg.pareto("accuracy,latency", experiment="sklearn-digitz")
