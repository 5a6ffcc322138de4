"""Version comparison, as the script automations compare ``version_min`` / ``version_max``."""

import re

from ckg.mlc.dialect import MLCFLOW, Dialect


def compare_versions(
    a: str, b: str, minor_skip_okay: bool = False, dialect: Dialect = MLCFLOW
) -> int:
    """-1, 0 or 1 as version ``a`` is below, equal to or above ``b``.

    Dot-separated parts compared by their leading digits (0 without), missing parts as 0;
    with ``minor_skip_okay``, only as many parts as ``b`` has: ``compare_versions`` of
    mlperf-automations' ``automation/utils.py``, which the script automation calls for
    ``version`` / ``version_min`` / ``version_max``. CM (``dialect.text_versions``) keeps a
    part that is not a number as text: cmind's ``utils.compare_versions``, where text against
    a number raises; here it is compared as text then.

    >>> compare_versions("3.10.2", "3.9"), compare_versions("9.1", "9", True)
    (1, 0)
    >>> compare_versions("1.2", "1.2.0"), compare_versions("2.0rc1", "2.0")
    (0, 0)
    >>> from ckg.mlc.dialect import CM
    >>> compare_versions("2.0rc1", "2.0", dialect=CM)
    1
    """

    def parts(v):
        if dialect.text_versions:
            return [int(p) if p.isdigit() else p for p in str(v).split(".")]
        return [int(m.group(1)) if (m := re.match(r"(\d+)", p)) else 0 for p in str(v).split(".")]

    x, y = parts(a), parts(b)
    length = len(y) if minor_skip_okay else max(len(x), len(y))
    for k in range(length):
        p = x[k] if k < len(x) else 0
        q = y[k] if k < len(y) else 0
        if type(p) is not type(q):
            p, q = str(p), str(q)
        if p != q:
            return 1 if p > q else -1
    return 0
