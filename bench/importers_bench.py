"""Time the pure importers and the resolver on the real corpora (no graph, no CLI).

Prints, per corpus: meta files, artifacts, dependency entries, warnings, the time to detect
formats, to parse (importer ``read``), to resolve every entry, and the time the same YAML
files take with PyYAML's pure-Python loader and with plain ``CSafeLoader`` (the floor).

The ``mlc-scripts`` distribution on PyPI holds no scripts (its install step clones them from
GitHub), so the MLC figure is measured on cm4mlops rewritten into MLC's layout (``meta.yaml``
names, ``MLC_`` keys) in a temporary folder; pass the folder of an unpacked MLC repository
as an argument to time that too.

Usage: ``.venv/bin/python bench/importers_bench.py [MLC_REPO_DIR] [--repeat N]``
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ckg.core.resolve import resolve  # noqa: E402
from ckg.formats import ck, cm, mlc  # noqa: E402
from ckg.formats.detect import detect_formats  # noqa: E402


def corpora() -> Path:
    here = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("CKG_CORPORA", here.parent / "shared" / "corpora"))


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def as_mlc(src: Path, dst: Path) -> Path:
    """cm4mlops rewritten the way MLCFlow renamed things: meta.yaml/json, MLC_ keys."""
    names = {"_cm.yaml": "meta.yaml", "_cm.json": "meta.json", "cmr.yaml": "meta.yaml"}
    for path in src.rglob("*"):
        if path.name in names:
            out = dst / path.relative_to(src).parent / names[path.name]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(path.read_text().replace("CM_", "MLC_"))
    return dst


def measure(name: str, root: Path, fmt: str, module, repeat: int) -> None:
    t_detect, detected = best(lambda: detect_formats(root), repeat)
    files = detected.get(fmt, [])
    t_read, records = best(lambda: module.read(root, name, files), repeat)
    found = [n.props for n in records.nodes if n.label == "Artifact"]
    t_resolve, results = best(lambda: resolve(records.dependencies, found), repeat)
    ok = sum(r.status == "ok" for r in results)
    yamls = [f for f in files if f.suffix == ".yaml"]
    texts = [f.read_text() for f in yamls]
    t_fast, _ = best(lambda: [yaml.load(t, Loader=yaml.CSafeLoader) for t in texts], repeat)
    t_pure, _ = best(lambda: [yaml.load(t, Loader=yaml.SafeLoader) for t in texts], 1)
    floor = f"{t_fast:>9.3f} {t_pure:>9.3f} {t_read / t_fast:>6.2f}x" if yamls else f"{'(JSON)':>9}"
    print(
        f"{name:<22} {len(files):>5} {len(found):>9} {len(records.dependencies):>6} "
        f"{len(records.warnings):>5} {t_detect * 1000:>9.1f} {t_read:>8.3f} "
        f"{t_resolve * 1000:>10.1f} {ok / max(len(results), 1):>6.1%} {floor}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mlc_repo", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = corpora()
    print(
        f"{'corpus':<22} {'files':>5} {'artifacts':>9} {'deps':>6} {'warns':>5} "
        f"{'detect ms':>9} {'read s':>8} {'resolve ms':>10} {'ok':>6} "
        f"{'CSafe s':>9} {'pureYAML s':>9} {'/CSafe':>7}"
    )
    if (base / "cm4mlops").is_dir():
        measure("cm4mlops (cm)", base / "cm4mlops", "cm", cm, args.repeat)
        tmp = Path(tempfile.mkdtemp(prefix="ckg-mlc-"))
        try:
            measure("cm4mlops as mlc", as_mlc(base / "cm4mlops", tmp), "mlc", mlc, args.repeat)
        finally:
            shutil.rmtree(tmp)
    if (base / "ck-env").is_dir():
        measure("ck-env (ck)", base / "ck-env", "ck", ck, args.repeat)
    if args.mlc_repo:
        measure(args.mlc_repo.name, args.mlc_repo, "mlc", mlc, args.repeat)


if __name__ == "__main__":
    main()
