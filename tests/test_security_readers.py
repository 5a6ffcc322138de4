"""Hostile result tables, notebooks and metas: one bad value costs one warning, never the import.

Every reader goes through the guarded loaders of :mod:`ckg.formats.loaders`: YAML aliases that
expand without bound, JSON nested past what the parser follows, integers of thousands of
digits, a CSV field of 50 MB, ``1e999`` and other non-finite numbers, and a key written twice.
Each case is a real file, imported through both doors a user has (``ckg results import`` of
the file, ``ckg ingest`` of its folder, twice) from the command line and from the API, each a
real process bounded in memory and time (the unguarded readers grow without bound).
"""

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

CKG = str(Path(sys.executable).with_name("ckg"))
#: What one import may take: the alias bomb grew the unguarded reader past any bound.
MEMORY = 2 << 30
TIMEOUT = 240
#: The API's doors, as a user's script calls them.
API = """
import json, sys, ckg
steps = []
with ckg.open() as kg:
    report = kg.import_results([sys.argv[1]])
    steps.append({"source": report.sources[0], "warnings": [str(w) for w in report.warnings]})
    for _ in range(2):
        summary = kg.ingest(sys.argv[2])
        steps.append({"source": summary.uid, "warnings": [str(w) for w in summary.warnings]})
print(json.dumps(steps))
"""


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _run(argv: list[str]) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=_bounded
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def import_and_ingest(door: str, file: Path) -> list[dict]:
    """``ckg results import`` of ``file``, then ``ckg ingest`` of its folder twice: for each,
    the source written and its warnings (as ``path:line: message``)."""
    folder = file.parent
    if door == "api":
        return json.loads(_run([sys.executable, "-c", API, str(file), str(folder)]))
    report = json.loads(_run([CKG, "results", "import", str(file), "--json"]))
    steps = [{"source": report["sources"][0], "warnings": report["warnings"]}]
    for _ in range(2):
        [summary] = json.loads(_run([CKG, "ingest", str(folder), "--json"]))
        warnings = [_problem(**w) for w in summary["warnings"]]
        steps.append({"source": summary["uid"], "warnings": warnings})
    return steps


def _problem(path: str, line: int | None, message: str) -> str:
    return f"{path}:{line}: {message}" if line else f"{path}: {message}"


def results_of(kg, source: str, path: str) -> dict[str, object]:
    """model -> value of the Results ``source`` holds from the file ``path``."""
    rows = kg.store.run(
        "MATCH (r:Result {source_uid: $s}) WHERE r.path = $p RETURN r.model AS m, r.value AS v",
        {"s": source, "p": path},
    )
    return {row["m"]: row["v"] for row in rows}


def check(kg, door: str, file: Path, warning: str, expected: dict[str, object]) -> None:
    """Both doors read ``file`` with exactly one warning matching ``warning`` (a regex of
    what follows the file's name: ``:line: message`` or ``: message``) and hold the
    ``expected`` results (model -> value) of that file; the second ingest of the unchanged
    source does not fail and leaves them."""
    name = file.name
    first_import, first_ingest, again = import_and_ingest(door, file)
    for step in (first_import, first_ingest):
        [said] = step["warnings"]
        assert re.fullmatch(re.escape(name) + warning, said), said
        assert results_of(kg, step["source"], name) == expected
    assert again["source"] == first_ingest["source"]
    assert results_of(kg, again["source"], name) == expected


def long_table(rows: list[str]) -> str:
    """A long JSON results table: one row per ``model``, accuracy 90, 91, ... and ``rows``
    spliced in as further rows (JSON text)."""
    good = [
        json.dumps({"model": m, "metric": "accuracy", "value": 90 + i}) for i, m in enumerate("AB")
    ]
    return '{"task": "T", "dataset": "X", "results": [' + ", ".join(good + rows) + "]}\n"


GOOD = {"A": 90.0, "B": 91.0}
DOORS = ["cli", "api"]


@pytest.fixture
def src(tmp_path, ckg_home) -> Path:
    """A folder of results with one other, harmless table in it."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "other.csv").write_text("model,dataset,task,accuracy\nZ,X,T,50\n")
    return folder


# --- YAML alias bombs -----------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_yaml_alias_bomb_in_a_results_file_is_cut_with_one_warning(kg, src, door):
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    file = src / "bomb-results.yaml"
    file.write_text(
        "task: T\ndataset: X\nnotes:\n"
        + "".join(f"  {line}\n" for line in lines)
        + "results:\n- {model: A, metric: accuracy, value: 90}\n"
        "- {model: B, metric: accuracy, value: 91}\n"
    )
    assert file.stat().st_size < 1024
    check(
        kg,
        door,
        file,
        r":9: YAML aliases expand to more than 100000 nodes; the value here is read as empty",
        GOOD,
    )


# --- nesting --------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_json_value_nested_100k_deep_is_cut_with_one_warning(kg, src, door):
    deep = "[" * 100_000 + "]" * 100_000
    file = src / "deep-results.json"
    file.write_text(
        long_table([f'{{"model": "C", "metric": "accuracy", "value": 92, "notes": {deep}}}'])
    )
    check(
        kg,
        door,
        file,
        r":1: a value nested deeper than 100 levels; read as null past level 100",
        {**GOOD, "C": 92.0},
    )


# --- numbers a float or a graph cannot hold -------------------------------------------------

HUGE = {
    # name: (file name, text with the hostile cell in row C, the warning)
    "4000-digit JSON integer": (
        "big-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": ' + "9" * 4000 + "}"]),
        r": row 2: accuracy: '9{20}…' is not a finite number",
    ),
    "5000-digit JSON integer, past Python's limit": (
        "bigger-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": ' + "9" * 5000 + "}"]),
        r": row 2: accuracy: '9{20}…' is not a finite number",
    ),
    "4000-digit CSV cell": (
        "big.csv",
        "model,dataset,task,accuracy\nA,X,T,90\nB,X,T,91\nC,X,T," + "9" * 4000 + "\n",
        r":4: line 4: accuracy: '9{20}…' is not a finite number",
    ),
    "5000-digit YAML integer": (
        "big-results.yaml",
        "task: T\ndataset: X\nresults:\n- {model: A, accuracy: 90}\n- {model: B, accuracy: 91}\n"
        "- {model: C, accuracy: " + "9" * 5000 + "}\n",
        r": row 2: accuracy: '9{20}…' is not a finite number",
    ),
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", list(HUGE))
def test_integer_of_thousands_of_digits_is_one_unreadable_cell(kg, src, door, case):
    name, text, warning = HUGE[case]
    (src / name).write_text(text)
    check(kg, door, src / name, warning, {**GOOD, "C": None})


NON_FINITE = {
    "CSV 1e999": (
        "inf.csv",
        "model,dataset,task,accuracy\nA,X,T,90\nB,X,T,91\nC,X,T,1e999\n",
        r":4: line 4: accuracy: '1e999' is not a finite number",
        {"C": None},
    ),
    "CSV 1e308 kJ": (
        "kj.csv",
        "model,dataset,task,metric,value,unit\nA,X,T,accuracy,90,%\n"
        "B,X,T,accuracy,91,%\nC,X,T,energy,1e308,kJ\n",
        r":4: line 4: energy: '1e308' is not a finite number",
        {"C": None},
    ),
    "JSON 1e999": (
        "inf-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": 1e999}']),
        r": row 2: accuracy: '1e999' is not a finite number",
        {"C": None},
    ),
    "JSON -Infinity": (
        "ninf-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": -Infinity}']),
        r": row 2: accuracy: '-Infinity' is not a finite number",
        {"C": None},
    ),
    "JSON NaN": (
        "nan-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": NaN}']),
        r": row 2: accuracy: no value \('NaN'\)",
        {},
    ),
    "YAML .inf": (
        "inf-results.yaml",
        "task: T\ndataset: X\nresults:\n- {model: A, accuracy: 90}\n"
        "- {model: B, accuracy: 91}\n- {model: C, accuracy: .inf}\n",
        r": row 2: accuracy: '.inf' is not a finite number",
        {"C": None},
    ),
    "JSON stderr 1e999": (
        "err-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": 92, "stderr": 1e999}']),
        r": row 2: accuracy: '92 ± 1e999' is not a finite number",
        {"C": None},
    ),
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", list(NON_FINITE))
def test_non_finite_number_is_one_unreadable_cell_and_reingest_works(kg, src, door, case):
    name, text, warning, bad = NON_FINITE[case]
    (src / name).write_text(text)
    check(kg, door, src / name, warning, {**GOOD, **bad})


# --- field size -----------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_csv_field_of_50_mb_skips_its_row_with_one_warning(kg, src, door):
    file = src / "wide.csv"
    with file.open("w") as out:
        out.write("model,dataset,task,metric,value,notes\nA,X,T,accuracy,90,\nC,X,T,accuracy,92,")
        out.write("x" * (50 << 20))
        out.write("\nB,X,T,accuracy,91,\n")
    check(kg, door, file, r":3: a field longer than 131072 characters; row skipped", GOOD)


# --- a key written twice --------------------------------------------------------------------

DUPLICATES = {
    "JSON object": (
        "dup-results.json",
        long_table(['{"model": "C", "metric": "accuracy", "value": 92, "value": 12}']),
        ": 'value' written twice in one object; the first value is kept",
    ),
    "YAML mapping": (
        "dup-results.yaml",
        "task: T\ndataset: X\nresults:\n- {model: A, accuracy: 90}\n"
        "- {model: B, accuracy: 91}\n- model: C\n  accuracy: 92\n  accuracy: 12\n",
        ":8: 'accuracy' written twice in one mapping; the first value is kept",
    ),
    "CSV header": (
        "dup.csv",
        "model,dataset,task,accuracy,accuracy\nA,X,T,90,1\nB,X,T,91,2\nC,X,T,92,12\n",
        ":1: 'accuracy' written twice in the header; the first column is kept",
    ),
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", list(DUPLICATES))
def test_duplicate_key_in_a_table_keeps_the_first_with_one_warning(kg, src, door, case):
    name, text, warning = DUPLICATES[case]
    (src / name).write_text(text)
    check(kg, door, src / name, re.escape(warning), {**GOOD, "C": 92.0})


# --- characters no graph holds --------------------------------------------------------------

UNSTORABLE = {
    "NUL in a CSV cell": (
        "nul.csv",
        "model,dataset,task,accuracy\nA,X,T,90\nB\0x,X,T,91\n",
        ":3: NUL character: NUL read as U+FFFD",
        "B\ufffdx",
    ),
    "escaped NUL in JSON": (
        "nul-results.json",
        long_table([]).replace('"B"', '"B\\u0000x"'),
        ":1: NUL character in a string: NUL and lone surrogates read as U+FFFD",
        "B\ufffdx",
    ),
    "lone surrogate in JSON": (
        "surrogate-results.json",
        long_table([]).replace('"B"', '"B\\udc80x"'),
        ":1: lone surrogate (not valid UTF-8) in a string: NUL and lone surrogates read as U+FFFD",
        "B\ufffdx",
    ),
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_nul_or_lone_surrogate_in_a_table_is_read_as_u_fffd_with_one_warning(kg, src, door, case):
    name, text, warning, model = UNSTORABLE[case]
    (src / name).write_text(text)
    check(kg, door, src / name, re.escape(warning), {"A": 90.0, model: 91.0})


# --- notebooks and metas --------------------------------------------------------------------


def ingest(kg, folder: Path) -> list[str]:
    [summary] = json.loads(_run([CKG, "ingest", str(folder), "--json"]))
    return [_problem(**w) for w in summary["warnings"]]


def test_notebook_with_hostile_json_is_read_with_one_warning_each(kg, src):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("lr = 0.1", metadata={"tags": ["parameters"], "deep": "D"}),
            nbformat.v4.new_code_cell("import sklearn", metadata={"tags": [], "n": "N"}),
        ]
    )
    text = nbformat.writes(nb)
    deep = "[" * 100_000 + "]" * 100_000
    text = text.replace('"deep": "D"', f'"deep": {deep}').replace('"n": "N"', '"n": 1' + "0" * 5000)
    text = text.replace('"tags": []', '"tags": ["first"], "tags": ["second"]')
    (src / "train.ipynb").write_text(text)
    warnings = ingest(kg, src)
    assert len(warnings) == 2, warnings
    assert re.fullmatch(r"train\.ipynb:\d+: a value nested deeper than 100 levels; .*", warnings[0])
    assert warnings[1] == "train.ipynb: 'tags' written twice in one object; the first value is kept"
    [meta] = [
        json.loads(a["meta"])
        for a in kg.store.run("MATCH (a:Artifact {format: 'notebook'}) RETURN a.meta AS meta")
    ]
    assert meta["parameters"] == {"lr": 0.1} and meta["packages"] == {"sklearn": "scikit-learn"}


def test_meta_with_a_scalar_python_cannot_hold_is_read_with_it_as_text(kg, src):
    script = src / "script" / "odd"
    script.mkdir(parents=True)
    (script / "_cm.yaml").write_text(
        "alias: odd\nuid: 0000000000000007\nautomation_alias: script\ntags: [odd]\n"
        f"size: {'9' * 5000}\nreleased: 2024-13-45\nratio: .nan\n"
    )
    (script / "_cm.json").unlink(missing_ok=True)
    assert ingest(kg, src) == []
    [meta] = [
        json.loads(a["meta"])
        for a in kg.store.run("MATCH (a:Artifact {alias: 'odd'}) RETURN a.meta AS meta")
    ]
    assert (meta["size"], meta["released"], meta["ratio"]) == ("9" * 5000, "2024-13-45", ".nan")
