"""Collective Mind (CM, ``cmind``, cm4mlops) repositories: ``cmr.yaml``, ``_cm.yaml``/``_cm.json``.

An artifact is a folder ``<automation>/<alias>/`` holding ``_cm.json`` and/or ``_cm.yaml``
(both: one artifact, YAML merged over JSON). Its kind is the meta's ``automation_alias``
(``script``, ``cache``, ``challenge``, ...). See :mod:`ckg.formats.cmlike` for what is read.

Examples
--------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp()); (d / "script" / "hello").mkdir(parents=True)
>>> _ = (d / "script" / "hello" / "_cm.yaml").write_text(
...     "alias: hello\\nuid: 0123456789abcdef\\nautomation_alias: script\\ntags: [hello]\\n"
...     "deps:\\n- tags: detect,os\\n")
>>> r = read(d, "src1")
>>> r.nodes[0].props["kind"], r.dependencies[0].tags
('script', ['detect', 'os'])
"""

from pathlib import Path

from ckg.core.records import Records
from ckg.formats.cmlike import Layout, read_tree
from ckg.formats.detect import CM_DESCRIPTOR, CM_META, detect_formats

LAYOUT = Layout(format="cm", meta_names=CM_META, descriptor=CM_DESCRIPTOR)


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of every CM artifact and repository descriptor under ``root``.

    ``files`` are the CM meta files to read (as :func:`ckg.formats.detect.detect_formats`
    lists them under ``"cm"``); None detects them.
    """
    if files is None:
        files = detect_formats(root).get("cm", [])
    return read_tree(Path(root), source_uid, files, LAYOUT)
