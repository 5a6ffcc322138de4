"""Issue 26's papercuts, each through the command a person types, in real processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckg.entry import _uses_embedded_store
from tests.fixtures_store import wait_gone
from tests.serving import CKG


def ckg(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``ckg ARGS`` as the console script runs it, in a process of its own."""
    return subprocess.run([str(CKG), *args], capture_output=True, text=True, timeout=120,
                          **kwargs)  # fmt: skip


def test_db_stop_without_a_server_starts_none(ckg_home):
    # The console script starts the embedded server beside the import of the CLI, for every
    # command that opens the store: `db stop` does not, and must not have one started.
    assert not _uses_embedded_store(["db", "stop"])
    assert not _uses_embedded_store(["--debug", "db", "stop"])
    assert _uses_embedded_store(["db", "status"])
    done = ckg("db", "stop")
    assert (done.returncode, done.stdout, done.stderr) == (0, "no server running\n", "")
    assert not (ckg_home / "falkordb.pid").exists()


def test_serve_refuses_a_port_out_of_range_in_one_line(ckg_home):
    for port in ("99999", "0", "-1"):
        done = ckg("serve", "--port", port)
        assert done.returncode == 2, done.stdout
        assert done.stdout == ""  # no URL announced
        assert done.stderr.splitlines() == [
            f"ckg: error: cannot listen on port {port}: a port is a number from 1 to 65535"
        ]


@pytest.mark.parametrize("args", [["queries"], ["queries", "--json"], ["results", "list", "--csv"]])
def test_output_into_a_closed_pipe_ends_quietly_with_status_0(ckg_home, args):
    # `ckg ... | head -1`: the reader goes away; here it is gone before ckg writes at all.
    read, write = os.pipe()
    os.close(read)
    try:
        command = [sys.executable, "-c", "from ckg.cli import main; main()", *args]
        done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=120)  # fmt: skip
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")


SLOW = {
    "ckg.yaml": "alias: slow-step\nuid: papercut-slow-step\nkind: workflow\nparams: {n: 1}\n"
    'grid: {n: [1, 2]}\nrun: "{python} {artifact_dir}/slow.py {n}"\n',
    # Says it runs (its pid, where the test looks), then waits for the Ctrl-C.
    "slow.py": "import os, pathlib, time\n"
    "pathlib.Path(os.environ['STARTED']).write_text(str(os.getpid()))\ntime.sleep(600)\n",
}


def test_ctrl_c_during_demo_says_so_and_records_the_run_as_interrupted(ckg_home, tmp_path):
    folder = tmp_path / "slow"
    folder.mkdir()
    for name, text in SLOW.items():
        (folder / name).write_text(text)
    started = tmp_path / "started"
    # A session of its own, so that the SIGINT goes to its whole group as a terminal's Ctrl-C.
    proc = subprocess.Popen([str(CKG), "demo", "--path", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "STARTED": str(started)})  # fmt: skip
    deadline = time.monotonic() + 300  # not a timing: how long to wait for the first run
    while not started.exists() or not started.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # a hang guard: say what was left, then fail
        left = subprocess.run(["ps", "-o", "pid,pgid,stat,wchan:20,args", "-s", str(proc.pid)],
                              capture_output=True, text=True).stdout  # fmt: skip
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"ckg demo did not end after Ctrl-C; its session:\n{left}\n{out}\n{err}")
    assert proc.returncode == 130, err
    [said] = err.splitlines()
    found = re.fullmatch(r"ckg: interrupted: run (run-\w+) \(n=1\) is recorded with status "
                         r"interrupted; 0 runs finished before it, the rest of the grid was not "
                         r"run", said)  # fmt: skip
    assert found, said
    assert "interrupted" in out  # the table of the runs shows its status
    runs = json.loads(ckg("runs", "--json").stdout)
    assert [(r["run"], r["status"]) for r in runs] == [(found.group(1), "interrupted")]
    assert wait_gone(int(started.read_text()), 0)  # the step was ended, not left behind


def test_compare_plot_of_many_results_is_panels_of_a_sensible_size_each_with_its_axis(tmp_path):
    import pandas as pd
    from PIL import Image

    from ckg.results.published import plot

    n = 217  # SQuAD1.1 F1's results in the corpora: an image 800 x 6,610 px, one axis
    frame = pd.DataFrame({"model": [f"model {i}" for i in range(n)], "date": ["2019-05-01"] * n,
                          "dataset": ["SQuAD1.1"] * n, "value": [95 - i / 20 for i in range(n)],
                          "unit": [""] * n})  # fmt: skip
    frame.attrs.update(metric="f1", dataset="SQuAD1.1", direction="max", datasets=["SQuAD1.1"])
    width, height = Image.open(plot(frame, tmp_path / "f1.png")).size
    assert height <= 1200 and width <= 2400
    svg = plot(frame, tmp_path / "f1.svg").read_text()
    assert svg.count("<!-- f1, higher is better -->") == 3  # the axis under each panel
    assert "the first 120 of 217" in svg


def _results_table(path: Path) -> Path:
    """Six results with long links on a dataset whose papers are dated, two on one whose
    papers are not."""
    rows = ["paper,title,date,task,dataset,model,metric,value,code"]
    rows += [f"https://arxiv.org/abs/2101.0{i:04d}v3,A study of long identifiers {i},"
             f"2021-0{i + 1}-15,Image Classification,WideNet,model-{i},accuracy,{90 - i}.5,"
             f"https://github.com/some-organisation/a-rather-long-repository-name-{i}"
             for i in range(6)]  # fmt: skip
    rows += [f",,,Image Classification,UndatedNet,model-{i},accuracy,7{i}" for i in range(2)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_tables_never_break_an_identifier_nor_show_a_column_no_row_fills(ckg_home, tmp_path):
    assert ckg("results", "import", str(_results_table(tmp_path / "r.csv"))).returncode == 0
    query = ["query", "compare-papers", "-p", "dataset=WideNet"]
    found = json.loads(ckg(*query, "--json").stdout)
    known = {r["result"] for r in found} | {r["paper_url"] for r in found}
    known |= {url for r in found for url in r["code"]}
    assert len(known) == 18
    for width in (100, 140, 180, 240):
        shown = ckg(*query, env={**os.environ, "COLUMNS": str(width)}).stdout
        words = [w.strip('[",]') for line in shown.splitlines() for w in line.split()]
        for word in words:  # a link or uid whole, or its start and an ellipsis, never a piece
            if "://" in word or word.startswith("result:"):
                cut = word.endswith("…") and any(k.startswith(word[:-1]) for k in known)
                assert word in known or cut, shown
            assert not any(k != word and len(word) > 3 and k.endswith(word) for k in known), shown

    def compare(dataset: str) -> list[str]:
        done = ckg("compare", "--task", "Image Classification", "--dataset", dataset,
                   "--metric", "accuracy", env={**os.environ, "COLUMNS": "200"})  # fmt: skip
        return done.stdout.splitlines()

    def header(lines: list[str]) -> list[str]:
        return next(line for line in lines if "rank" in line).split()

    dated = compare("WideNet")
    assert "date" in header(dated) and "2021-01-15" in "".join(dated)
    undated = compare("UndatedNet")  # no result has a date: no empty column for it
    assert "date" not in header(undated)
    assert "(empty in every row shown: unit, stderr, paper, date, code)" in undated


def test_compare_shortens_a_long_paper_title_at_a_word_with_an_ellipsis(ckg_home):
    results = Path(__file__).parent.parent / "examples" / "results" / "mnist-results.yaml"
    assert ckg("results", "import", str(results)).returncode == 0
    done = ckg("compare", "--task", "Image Classification", "--dataset", "MNIST", "--metric",
               "error", env=os.environ | {"COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the title has 56 characters: cut at a word, saying so, never inside one ("recogn")
    assert "Gradient-based learning applied to document …" in done.stdout
    assert "recogn" not in done.stdout


#: A workflow whose command is long and differs only at its end, by the model it trains.
TRAINER = """\
alias: papercut-train
uid: papercut-train
params: {model: bayes}
run: "{python} -c pass --a-long-option-naming-the-data digits --seed 0 --model {model}"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A home where ``ckg run papercut-train --grid model=bayes,forest`` ran twice: two
    experiments named papercut-train of two runs each; the environment that reaches it, and
    the two experiments' uids, oldest first."""
    from ckg.store.server import stop_server

    home = tmp_path_factory.mktemp("trained")
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env |= {"CKG_HOME": str(home / "home"), "CKG_DB": "embedded", "CKG_REPLY_TIMEOUT": "120"}
    folder = home / "train"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(TRAINER)
    try:
        assert ckg("ingest", str(folder), env=env).returncode == 0
        made = []
        for _ in range(2):
            done = ckg("run", "papercut-train", "--grid", "model=bayes,forest", "--json", env=env)
            assert done.returncode == 0, done.stderr
            made.append(json.loads(done.stdout)["experiment"])
        yield env, made
    finally:
        stop_server(home / "home")


def test_runs_of_an_experiment_name_lists_every_experiment_so_named(trained):
    env, (first, second) = trained
    done = ckg("runs", "--experiment", "papercut-train", "--json", env=env)
    assert done.returncode == 0, done.stderr  # it said "2 experiments are named ..."
    rows = json.loads(done.stdout)
    found = sorted((r["experiment"], json.loads(r["params"])["model"]) for r in rows)
    assert found == [(e, m) for e in sorted((first, second)) for m in ("bayes", "forest")]
    # a table tells them apart by the start of each one's uid, even in a narrow terminal
    table = ckg("runs", "--experiment", "papercut-train", env=env | {"COLUMNS": "60"}).stdout
    assert first[:12] in table and second[:12] in table, table
    # a uid, or its start, still selects that one alone
    for text in (second, second[:12]):
        rows = json.loads(ckg("runs", "--experiment", text, "--json", env=env).stdout)
        assert [r["experiment"] for r in rows] == [second, second]
    # a front is of one experiment: the name is refused, the uids named
    done = ckg("pareto", "runtime,memory", "--experiment", "papercut-train", env=env)
    assert done.returncode == 2 and first in done.stderr and second in done.stderr


def test_diff_of_two_long_commands_shows_where_they_differ(trained):
    env, (first, _) = trained
    runs = ckg("runs", "--experiment", first, "--ids", env=env).stdout.split()
    done = ckg("diff", *runs, env=env)
    assert done.returncode == 0, done.stderr
    [command] = [line for line in done.stdout.splitlines() if line.startswith("command:")]
    # the commands differ in their last word only; the line shows it, not a common start
    assert re.search(r"--model (bayes|forest)'? -> .*--model (bayes|forest)", command), command
    assert "bayes" in command and "forest" in command, command


def test_find_keeps_the_artifacts_of_the_source_named(ckg_home, tmp_path):
    for name in ("alpha", "beta"):
        folder = tmp_path / name / "flow"  # both sources' folders end in the same word
        folder.mkdir(parents=True)
        (folder / "ckg.yaml").write_text(f"alias: {name}-flow\nuid: papercut-{name}\n"
                                         "tags: [papercut]\nrun: echo\n")  # fmt: skip
    assert ckg("ingest", str(tmp_path / "alpha" / "flow"), "--name", "alpha").returncode == 0
    assert ckg("ingest", str(tmp_path / "beta" / "flow")).returncode == 0
    everything = json.loads(ckg("find", "--tags", "papercut", "--json").stdout)
    beta = next(r["source_uid"] for r in everything if r["alias"] == "beta-flow")
    # the name, the location, its last parts, the start of the uid: as --source of ckg show
    for source, alias in (("alpha", "alpha-flow"), (str(tmp_path / "beta" / "flow"), "beta-flow"),
                          ("beta/flow", "beta-flow"), (beta[:6], "beta-flow")):  # fmt: skip
        done = ckg("find", "--tags", "papercut", "--source", source, "--json")
        assert done.returncode == 0, done.stderr  # it said: No such option: --source
        assert [r["alias"] for r in json.loads(done.stdout)] == [alias], source
    table = ckg("find", "--tags", "papercut", "--source", "alpha").stdout
    assert "alpha-flow" in table and "beta-flow" not in table
    done = ckg("find", "--tags", "papercut", "--source", "alpah")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["ckg: error: no ingested source 'alpah' (did you mean "
                                        "'alpha'?); sources: alpha, flow"]  # fmt: skip


def test_compare_of_mlperf_results_shows_what_tells_the_rows_apart(ckg_home, corpora):
    assert ckg("results", "import", str(corpora / "mlperf")).returncode == 0
    compare = ["compare", "--task", "Image Classification", "--dataset", "ImageNet", "--metric",
               "accuracy"]  # fmt: skip
    rows = json.loads(ckg(*compare, "--json").stdout)
    assert {r["model"] for r in rows} == {"resnet50"} and len(rows) == 78
    assert len({(r["submitter"], r["system"]) for r in rows}) > 40  # the API has them too
    import ckg as api

    with api.open() as kg:  # and a page of it, as the web view reads one
        page = kg.compare("Image Classification", "ImageNet", "accuracy", start=40, stop=50)
    assert list(page["system"]) == [r["system"] for r in rows[40:50]]
    for width in (90, 120, 400):
        shown = ckg(*compare, env=os.environ | {"COLUMNS": str(width)}).stdout
        header = next(line for line in shown.splitlines() if "rank" in line)
        assert "submitter" in header and "system" in header, shown
        cells = [tuple(c.strip() for c in line.split("│")[2:-1])  # without the rank
                 for line in shown.splitlines() if line.startswith("│")]  # fmt: skip
        assert len(cells) == 50 and len(set(cells)) == 50, shown  # no two rows look alike
    # 50 of the 78 rows shown (the rest read as a count): the note speaks of those
    assert "(50 of 78 rows shown" in shown
    assert "in every row shown: division closed, scenario Offline" in shown
