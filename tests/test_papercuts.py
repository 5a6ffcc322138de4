"""Issue 26's papercuts, each through the command a person types, in real processes."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.serving import CKG


def ckg(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``ckg ARGS`` as the console script runs it, in a process of its own."""
    return subprocess.run([str(CKG), *args], capture_output=True, text=True, timeout=120,
                          **kwargs)  # fmt: skip


def test_serve_refuses_a_port_out_of_range_in_one_line(ckg_home):
    for port in ("99999", "0", "-1"):
        done = ckg("serve", "--port", port)
        assert done.returncode == 2, done.stdout
        assert done.stdout == ""  # no URL announced
        assert done.stderr.splitlines() == [
            f"ckg: error: cannot listen on port {port}: a port is a number from 1 to 65535"
        ]


SLOW = {
    "ckg.yaml": "alias: slow-step\nuid: papercut-slow-step\nkind: workflow\nparams: {n: 1}\n"
    'grid: {n: [1, 2]}\nrun: "{python} {artifact_dir}/slow.py {n}"\n',
    # Says it runs (its pid, where the test looks), then waits for the Ctrl-C.
    "slow.py": "import os, pathlib, time\n"
    "pathlib.Path(os.environ['STARTED']).write_text(str(os.getpid()))\ntime.sleep(600)\n",
}


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


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
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    [said] = err.splitlines()
    found = re.fullmatch(r"ckg: interrupted: run (run-\w+) \(n=1\) is recorded with status "
                         r"interrupted; 0 runs finished before it, the rest of the grid was not "
                         r"run", said)  # fmt: skip
    assert found, said
    assert "interrupted" in out  # the table of the runs shows its status
    runs = json.loads(ckg("runs", "--json").stdout)
    assert [(r["run"], r["status"]) for r in runs] == [(found.group(1), "interrupted")]
    assert not _running(int(started.read_text()))  # the step was ended, not left behind


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
