"""MLCFlow repositories (mlperf-automations): root ``meta.yaml``, ``script/<alias>/meta.*``.

The same concepts as CM (see :mod:`ckg.formats.cmlike`) under other file names, with ``MLC_``
environment keys where CM has ``CM_``: the keys are kept as written in the meta, so the
planner sees them unchanged. A folder holding both ``meta.json`` and ``meta.yaml`` is one
artifact, YAML merged over JSON.

Examples
--------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp()); (d / "script" / "hello").mkdir(parents=True)
>>> _ = (d / "meta.yaml").write_text("alias: me@repo\\nuid: 1111222233334444\\n")
>>> _ = (d / "script" / "hello" / "meta.yaml").write_text(
...     "alias: hello\\nuid: 0123456789abcdef\\nautomation_alias: script\\ntags: [hello]\\n"
...     "default_env:\\n  MLC_GREETING: hi\\n")
>>> sorted(n.props["kind"] for n in read(d, "src1").nodes)
['repo', 'script']
"""

from pathlib import Path

from ckg.core.records import Records
from ckg.formats.cmlike import Layout, read_tree
from ckg.formats.detect import MLC_DESCRIPTOR, MLC_META, detect_formats

LAYOUT = Layout(format="mlc", meta_names=MLC_META, descriptor=MLC_DESCRIPTOR)


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of every MLC artifact and repository descriptor under ``root``.

    ``files`` are the MLC meta files to read (as :func:`ckg.formats.detect.detect_formats`
    lists them under ``"mlc"``); None detects them.
    """
    if files is None:
        files = detect_formats(root).get("mlc", [])
    return read_tree(Path(root), source_uid, files, LAYOUT)
