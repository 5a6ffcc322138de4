"""The wheel built from the project works where it is installed, away from the checkout.

The wheel is built from a copy of what it is made of (``pyproject.toml``, ``README.md``,
``ckg/``), so the build's own folders stay out of the checkout, and installed
(not editable) into a fresh virtual environment whose commands run from a folder outside the
checkout. Building and installing fetch nothing: the build uses this environment's setuptools,
and the fresh environment takes its third-party packages from this one's site-packages through
a ``.pth`` file. A folder a ``.pth`` file adds is no site directory, so the ``.pth`` files in
it (this environment's editable install of ckg among them) do not run: the fresh environment
imports ckg from its own site-packages (checked). The lean core's environment sees only the
distributions the wheel's core requires, and theirs, as links in a folder of their own.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
#: What the wheel is built from.
SOURCES = ("pyproject.toml", "README.md", "ckg")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip wheel`` builds from the project."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            shutil.copy2(REPO / name, source / name)
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "--quiet", "--wheel-dir", str(root / "dist"), str(source)])  # fmt: skip
    (built,) = (root / "dist").glob("ckg-*.whl")
    return built


def test_the_wheel_holds_every_file_of_the_packages(wheel):
    with zipfile.ZipFile(wheel) as archive:
        held = set(archive.namelist())
    here = {
        path.relative_to(REPO).as_posix()
        for package in ("ckg",)
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    missing = sorted(here - held)  # a file package-data misses is absent where ckg is installed
    assert not missing, missing


def _check(command: list[str], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **options)
    assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
    return done


def _venv(where: Path, wheel: Path, packages: Path) -> Path:
    """A fresh virtual environment at ``where`` with ``wheel`` installed and ``packages`` on
    its path; returns its ``bin`` folder."""
    _check([sys.executable, "-m", "venv", "--without-pip", str(where)])
    python = where / "bin" / "python"
    _check([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
            "--no-index", "--quiet", str(wheel)])  # fmt: skip
    site = _check([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    (Path(site.stdout.strip()) / "project-packages.pth").write_text(f"{packages}\n")
    return where / "bin"


def _env() -> dict:
    """This process's environment (CKG_HOME from the ckg_home fixture), with no path into
    the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _outside(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    assert not work.is_relative_to(REPO)
    return work


def test_the_installed_wheel_runs_the_demo_a_named_query_and_serve(wheel, ckg_home, tmp_path):
    bin_dir = _venv(tmp_path / "venv", wheel, Path(sysconfig.get_path("purelib")))
    work = _outside(tmp_path)

    def ckg(*args):
        return _check([str(bin_dir / "ckg"), *args], cwd=work, env=_env())

    probe = "import ckg.formats; print(ckg.__file__); print(ckg.formats.__file__)"
    where = _check([str(bin_dir / "python"), "-c", probe], cwd=work, env=_env())
    for path in where.stdout.split():
        assert Path(path).is_relative_to(tmp_path / "venv"), where.stdout
    example = bin_dir.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    example = example / "site-packages" / "ckg" / "run" / "demo_example"
    files = sorted(p.name for p in example.iterdir())
    assert {"ckg.yaml", "reported-results.yaml", "train.py"} <= set(files)

    demo = ckg("demo")
    assert "Pareto front of accuracy, latency" in demo.stdout
    assert sorted(p.name for p in example.iterdir()) == files  # the run wrote nothing there

    rows = json.loads(ckg("query", "compare-papers", "-p", "dataset=digits", "--json").stdout)
    assert sorted(r["model"] for r in rows) == ["knn", "logreg"]

    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(bin_dir / "ckg"), "serve", "--port", str(port)], cwd=work,
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        line = server.stdout.readline()
        token = re.search(r"\?token=(\S+)", line)
        assert token, line + server.stderr.read()
        auth = {"Authorization": f"token {token[1]}"}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/experiments", headers=auth)
        with urllib.request.urlopen(request, timeout=60) as page:
            assert page.status == 200
            assert "sklearn-digits" in page.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=60)


def _core_packages(wheel: Path, into: Path) -> set[str]:
    """Link into ``into`` the top-level files of every distribution the core of ``wheel``
    requires, and theirs, from this environment; returns their names."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    todo = [Requirement(line.split(":", 1)[1]) for line in text.splitlines()
            if line.startswith("Requires-Dist:")]  # fmt: skip
    todo = [r for r in todo if not r.marker or r.marker.evaluate({"extra": ""})]
    into.mkdir()
    seen = set()
    while todo:
        req = todo.pop()
        if canonicalize_name(req.name) in seen:
            continue
        seen.add(canonicalize_name(req.name))
        dist = metadata.distribution(req.name)
        for sub in map(Requirement, dist.requires or ()):
            if not sub.marker or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            if not (into / top).exists():
                (into / top).symlink_to(dist.locate_file(top))
    return seen


def test_the_lean_core_runs_and_names_the_extra_a_command_needs(wheel, ckg_home, tmp_path):
    core = _core_packages(wheel, tmp_path / "core")
    assert not {"starlette", "uvicorn", "scikit-learn", "ipykernel", "distributed"} & core
    bin_dir = _venv(tmp_path / "venv", wheel, tmp_path / "core")
    work = _outside(tmp_path)

    def ckg(*args, code=0):
        done = subprocess.run([str(bin_dir / "ckg"), *args], cwd=work, env=_env(),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == code, done.stdout + done.stderr
        return done

    listed = json.loads(ckg("queries", "--json").stdout)
    assert "compare-papers" in {q["name"] for q in listed}
    for command, needs, extra in [
        ("serve", "starlette", "serve"),
        ("demo", "sklearn", "demo"),
        ("cluster certs", "cryptography", "cluster"),
    ]:
        refused = ckg(*command.split(), code=1)
        said = f"ckg: error: ckg {command} needs {needs}: pip install 'ckg[{extra}]'"
        assert refused.stderr.strip() == said
