"""The metric registry: canonical metric names, their aliases, unit and better direction.

Every part of ckg that names a metric goes through here, so that "Top-1 Accuracy" in a
Papers with Code table, ``top1_accuracy`` in a run and ``Samples/s`` in an MLPerf record meet
on one ``Metric`` node. The packaged registry is ``ckg/core/metrics.yaml``; a user extends or
overrides it with files of the same shape, read in this order (later wins):

1. ``ckg/core/metrics.yaml`` (packaged),
2. ``$CKG_HOME/metrics.yaml`` when it exists,
3. each path in ``$CKG_METRICS`` (separated by ``os.pathsep``).

A file maps each canonical name to ``direction`` (``min`` or ``max``), ``unit`` (one of
:data:`ckg.core.values.CANONICAL_UNITS`, or empty for a plain score), ``aliases`` and
``description``::

    samples_per_watt:
      direction: max
      unit: ""
      aliases: [Samples/W, Perf per Watt]

API
---
- :func:`lookup` (name or alias -> :class:`Metric`, raises :class:`ckg.core.errors.NotFound`),
- :func:`get` (the same, None when unknown),
- :func:`resolve` (never fails: a registry metric, a metric derived from one when a known alias
  appears inside the name, e.g. ``ANS-EM`` -> ``ans_em`` with ``exact_match``'s direction, or
  an unknown metric whose ``direction`` is None),
- :func:`registry` (the :class:`Registry` itself, reloaded when a user file changes).

Aliases match ignoring case, spaces and punctuation (:func:`alias_key`).

Examples
--------
>>> lookup("Top 1 Accuracy").name
'top1_accuracy'
>>> lookup("Samples/s").direction
'max'
>>> m = resolve("ANS-EM")
>>> m.name, m.direction, m.base
('ans_em', 'max', 'exact_match')
"""

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core.errors import InvalidInput, NotFound, UsageError, did_you_mean
from ckg.core.values import CANONICAL_UNITS, parse_unit

PACKAGED = Path(__file__).with_name("metrics.yaml")
DIRECTIONS = ("min", "max")


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: canonical ``name``, ``direction`` (``min``, ``max`` or None when unknown),
    canonical ``unit`` ("" for a plain score), the ``aliases`` sources use, and for a metric
    derived from a registry one (``ANS-EM``), the ``base`` metric's name."""

    name: str
    direction: str | None
    unit: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    base: str | None = field(default=None)
    why: str = "registry"  # where the direction comes from, said beside every ranking

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is better, 0 when unknown.

        >>> Metric("latency", "min").sign
        -1
        """
        return {"max": 1, "min": -1}.get(self.direction or "", 0)

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``; raises if direction is unknown.

        >>> Metric("accuracy", "max").better(0.9, 0.8)
        True
        """
        if not self.sign:
            raise InvalidInput(f"metric {self.name!r} has no known direction (min or max)")
        return (a - b) * self.sign > 0


def alias_key(name: str) -> str:
    """The form aliases are matched in: lower case, letters and digits only.

    >>> alias_key("Top-1 Accuracy") == alias_key("top1_accuracy")
    True
    """
    return re.sub(r"[^0-9a-z%]+", "", name.casefold()).replace("%", "")


def slug(name: str) -> str:
    """A metric name made from free text: lower case words joined by ``_``.

    >>> slug("% Train Accuracy")
    'train_accuracy'
    """
    return "_".join(re.findall(r"[0-9a-z]+", name.casefold())) or "metric"


class Registry:
    """Metrics by canonical name, with an index of every alias.

    Parameters
    ----------
    metrics
        Metrics in priority order: a later metric with the same name replaces the earlier
        one, and a later alias points to the later metric.
    """

    def __init__(self, metrics: Iterable[Metric]):
        self._by_name: dict[str, Metric] = {}
        for metric in metrics:
            self._by_name[metric.name] = metric
        self._by_alias: dict[str, Metric] = {}
        for metric in self._by_name.values():
            for alias in (metric.name, *metric.aliases):
                self._by_alias[alias_key(alias)] = metric

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> "Registry":
        """Read registry files in order (later ones extend and override earlier ones)."""
        metrics: list[Metric] = []
        for path in paths:
            metrics.extend(read_file(path))
        return cls(metrics)

    def __iter__(self) -> Iterator[Metric]:
        return iter(sorted(self._by_name.values(), key=lambda m: m.name))

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Metric | None:
        """The metric ``name`` names (canonical name or alias), or None."""
        return self._by_alias.get(alias_key(name))

    def lookup(self, name: str) -> Metric:
        """The metric ``name`` names; raises NotFound naming close canonical names."""
        metric = self.get(name)
        if metric is None:
            hint = did_you_mean(slug(name), self._by_name)
            raise NotFound(f"unknown metric {name!r}{hint}; add it to a metrics.yaml")
        return metric

    def resolve(self, name: str) -> Metric:
        """A registry metric, else one derived from the longest known alias inside ``name``.

        ``ANS-EM`` becomes ``ans_em`` with ``exact_match``'s direction and unit; a name with
        no known part becomes a metric of its own whose direction is None.
        """
        metric = self.get(name)
        if metric is not None:
            return metric
        # "Energy (kJ)": the bracket states a unit, not a different metric.
        bracket = re.match(r"^(.*?)\s*[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*$", name)
        if bracket and bracket.group(1) and parse_unit(bracket.group(2)):
            return self.resolve(bracket.group(1))
        words = re.findall(r"[0-9a-z]+", name.casefold())
        # Longest run of words first; among equal lengths the rightmost, since the head
        # noun ("Test Error", "ANS-EM") comes last in how leaderboards name columns.
        for length in range(len(words) - 1, 0, -1):
            for start in range(len(words) - length, -1, -1):
                base = self._by_alias.get("".join(words[start : start + length]))
                if base is not None:
                    why = f"as {base.name} ({base.why})"
                    return Metric(
                        slug(name), base.direction, base.unit, (name,), "", base.name, why
                    )
        direction, why = infer_direction(name)
        return Metric(slug(name), direction, "", (name,), why=why)


#: Words naming a figure where lower is better, and where higher is: the name's evidence when
#: the registry does not know a metric. Compared with whole words of the name.
LOWER_WORDS = frozenset(
    {
        "error",
        "errors",
        "err",
        "loss",
        "perplexity",
        "ppl",
        "entropy",
        "bpc",
        "bpb",
        "bpd",
        "wer",
        "cer",
        "ter",
        "latency",
        "time",
        "seconds",
        "runtime",
        "params",
        "parameters",
        "size",
        "memory",
        "energy",
        "power",
        "flops",
        "mae",
        "mse",
        "rmse",
        "fid",
        "distance",
        "eer",
        "rank",
        "regret",
        "cost",
        "miss",
        "bits",
    }
)
HIGHER_WORDS = frozenset(
    {
        "accuracy",
        "acc",
        "precision",
        "recall",
        "f1",
        "auc",
        "bleu",
        "rouge",
        "map",
        "mrr",
        "ndcg",
        "iou",
        "miou",
        "psnr",
        "ssim",
        "throughput",
        "speedup",
        "hits",
        "em",
        "score",
        "correlation",
        "success",
        "reward",
        "return",
        "coverage",
    }
)


def infer_direction(name: str) -> tuple[str | None, str]:
    """A direction for a metric the registry does not know, from the words of its name,
    and the reason; ``(None, reason)`` when the name says nothing or says both.

    >>> infer_direction("Bit per Character (BPC)")
    ('min', "inferred from 'bpc' in the name: lower is better")
    >>> infer_direction("Mean Reciprocal Rank")[0] is None   # "rank" and "reciprocal"?
    True
    >>> infer_direction("Widget count")
    (None, 'unknown: neither the registry nor the name says which way is better')
    """
    words = re.findall(r"[0-9a-z]+", name.casefold())
    if "reciprocal" in words or "inverse" in words:
        return None, f"unknown: {name!r} inverts what its words say; give the direction"
    lower = [w for w in words if w in LOWER_WORDS]
    higher = [w for w in words if w in HIGHER_WORDS]
    if lower and not higher:
        return "min", f"inferred from {lower[0]!r} in the name: lower is better"
    if higher and not lower:
        return "max", f"inferred from {higher[0]!r} in the name: higher is better"
    if lower and higher:
        return None, (
            f"unknown: the name holds {lower[0]!r} (lower is better) and "
            f"{higher[0]!r} (higher is better)"
        )
    return None, "unknown: neither the registry nor the name says which way is better"


def read_file(path: Path) -> list[Metric]:
    """The metrics of one registry file; raises InvalidInput naming the file and entry."""
    try:
        data = _parsed(Path(path))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read metric registry: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: a metric registry maps metric names to their fields")
    metrics = []
    for name, spec in data.items():
        spec = spec or {}
        where = f"{path}: metric {name!r}"
        if not isinstance(spec, dict):
            raise InvalidInput(f"{where}: expected direction, unit, aliases, description")
        direction = spec.get("direction")
        if direction not in DIRECTIONS:
            raise InvalidInput(f"{where}: direction must be min or max, got {direction!r}")
        unit = str(spec.get("unit") or "")
        if unit and unit not in CANONICAL_UNITS:
            raise InvalidInput(f"{where}: unit {unit!r} is not one of {CANONICAL_UNITS}")
        aliases = spec.get("aliases") or []
        if not isinstance(aliases, list):
            raise InvalidInput(f"{where}: aliases must be a list")
        metrics.append(
            Metric(
                str(name),
                direction,
                unit,
                tuple(str(a) for a in aliases),
                str(spec.get("description") or ""),
            )
        )
    return metrics


def _parsed(path: Path):
    """The YAML content of ``path``, kept as JSON beside ckg's other caches while the file
    is unchanged: importing PyYAML alone costs about 15 ms of every ``ckg run``."""
    stat = path.stat()
    stamp = [str(path.resolve()), stat.st_mtime_ns, stat.st_size]
    memo = None
    home = os.environ.get("CKG_HOME")
    if home:
        digest = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:24]
        memo = Path(home).expanduser() / "cache" / "yaml" / f"{digest}.json"
        try:
            return json.loads(memo.read_bytes())
        except (OSError, ValueError):
            pass
    import yaml

    try:
        # libyaml's loader when built: 2 ms instead of 15 ms for the packaged file
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from None
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            partial = memo.with_name(f".{memo.name}.{os.getpid()}")
            partial.write_text(json.dumps(data))
            os.replace(partial, memo)
        except (OSError, TypeError, ValueError):
            pass  # not JSON-able or not writable: parse it again next time
    return data


def registry_files() -> list[Path]:
    """The registry files in force now: packaged, ``$CKG_HOME/metrics.yaml``, ``$CKG_METRICS``."""
    files = [PACKAGED]
    home = os.environ.get("CKG_HOME")
    if home:
        user = Path(home).expanduser() / "metrics.yaml"
        if user.is_file():
            files.append(user)
    for item in os.environ.get("CKG_METRICS", "").split(os.pathsep):
        if item:
            path = Path(item).expanduser()
            if not path.is_file():
                raise InvalidInput(f"CKG_METRICS names {item}, which is not a file")
            files.append(path)
    return files


_cache: tuple[tuple, Registry] | None = None


def registry() -> Registry:
    """The registry from :func:`registry_files`, re-read only when one of them changed."""
    global _cache
    files = registry_files()
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if _cache is None or _cache[0] != stamp:
        _cache = (stamp, Registry.from_files(files))
    return _cache[1]


def lookup(name: str) -> Metric:
    """The registry metric ``name`` names; raises :class:`ckg.core.errors.NotFound` if none."""
    return registry().lookup(name)


def get(name: str) -> Metric | None:
    """The registry metric ``name`` names, or None."""
    return registry().get(name)


def directed(name: str, flag: str, advice: str = "add it to a metrics.yaml") -> Metric:
    """The registry metric ``name``, which an option (``flag``) ranks by its direction.

    Raises
    ------
    UsageError
        ``name`` is no registry metric, or one without a direction: the message names
        ``flag``, the known directed metrics that come close, and ``advice``.

    Examples
    --------
    >>> directed("accuracy", "--objectives").direction
    'max'
    >>> try:
    ...     directed("acuracy", "--objectives")
    ... except UsageError as error:
    ...     print(error)  # doctest: +ELLIPSIS
    --objectives: 'acuracy' is not a metric with a known direction...'accuracy'...metrics.yaml
    """
    metric = get(name)
    if metric is None or metric.direction is None:
        known = sorted(m.name for m in registry() if m.direction)
        raise UsageError(
            f"{flag}: {name!r} is not a metric with a known direction"
            f"{did_you_mean(name, known)}; {advice}"
        )
    return metric


def resolve(name: str) -> Metric:
    """A registry or derived metric for any name; see :meth:`Registry.resolve`."""
    return registry().resolve(name)


def canonical_name(name: str) -> str:
    """The name ckg files a metric under when it imports it, for any spelling: what every
    query, comparison and front looks metrics up by.

    >>> canonical_name("Top-1 Accuracy"), canonical_name("ANS-EM")
    ('top1_accuracy', 'ans_em')
    """
    return resolve(name).name
