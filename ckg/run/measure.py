"""Figures of a run: summary statistics, energy meters, and metrics from result files.

Energy comes from the best source the host offers, and every figure says which it was in
its ``method``: ``rapl`` (Intel/AMD RAPL counters under ``/sys/class/powercap``, package and
DRAM domains, counter wrap handled with ``max_energy_range_uj``), ``nvml`` (the total-energy
counter of each NVIDIA GPU, ``pynvml`` imported only when installed), otherwise
``estimate:tdp``: CPU seconds times a per-core power figure (``CKG_WATTS_PER_CORE``, default
:data:`DEFAULT_WATTS_PER_CORE`).

Result files a step may write in its working folder, read in this order (later wins):
a final JSON object line on stdout, ``cm-output.json``, ``cm-result.json``,
``ckg-result.json``. Each gives metric names and numbers; names go through the metric
registry (:func:`ckg.core.metrics.resolve`) so that ``Accuracy`` and ``accuracy`` meet.
"""

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core.errors import InvalidInput

#: Watts per busy core for the CPU-time energy estimate: a server core under load draws
#: roughly 5 to 10 W (a 200 W, 32-core package is about 6 W per core).
DEFAULT_WATTS_PER_CORE = 6.0
RAPL_ROOT = Path("/sys/class/powercap")
#: Result files in increasing priority.
RESULT_FILES = ("cm-output.json", "cm-result.json", "ckg-result.json")
#: Keys of CM's result and output records that are bookkeeping, not measurements.
_NOT_METRICS = {"return", "uid", "errors", "compliance", "inferred", "version"}


@dataclass(slots=True)
class Figure:
    """One measured metric of a run: its values over repeats, unit and method."""

    metric: str
    values: list[float]
    unit: str = ""
    method: str = ""
    device: str = ""
    extra: dict = field(default_factory=dict)


def summarize(values: list[float]) -> dict:
    """n, min, max, mean, median and sample stdev of ``values`` (stdev 0 for one value).

    >>> summarize([1.0, 2.0, 3.0])
    {'n': 3, 'min': 1.0, 'max': 3.0, 'mean': 2.0, 'median': 2.0, 'stdev': 1.0}
    """
    if not values:
        raise InvalidInput("no values to summarize")
    return {
        "n": len(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def counter_delta(before: int, after: int, max_range: int) -> int:
    """The increase of a wrapping energy counter between two readings.

    >>> counter_delta(900, 100, 1000)   # wrapped once
    200
    >>> counter_delta(100, 400, 1000)
    300
    """
    if after >= before:
        return after - before
    return after + max_range - before


# --- energy meters --------------------------------------------------------------------


@dataclass(slots=True)
class RaplDomain:
    """One RAPL counter: its ``energy_uj`` file and wrap range."""

    name: str
    path: Path
    max_range: int

    def read(self) -> int:
        return int((self.path / "energy_uj").read_text())


def rapl_domains(root: Path = RAPL_ROOT) -> list[RaplDomain]:
    """Readable package and DRAM domains under ``root`` (empty when none can be read).

    Recent kernels make ``energy_uj`` readable by root only; an unreadable domain is left
    out rather than guessed.
    """
    domains = []
    for zone in sorted(root.glob("intel-rapl:*")) if root.is_dir() else []:
        try:
            name = (zone / "name").read_text().strip()
            if not (name.startswith("package") or name == "dram"):
                continue
            domain = RaplDomain(
                f"{zone.name}:{name}", zone, int((zone / "max_energy_range_uj").read_text())
            )
            domain.read()
        except (OSError, ValueError):
            continue
        domains.append(domain)
    return domains


class EnergyMeter:
    """Reads the host's energy counters around an execution.

    Examples
    --------
    >>> meter = EnergyMeter(rapl_root=Path("/nonexistent"), use_nvml=False)
    >>> mark = meter.start()
    >>> [(f.metric, f.method) for f in meter.stop(mark, cpu_s=2.0)]
    [('energy', 'estimate:tdp')]
    """

    def __init__(self, *, rapl_root: Path = RAPL_ROOT, use_nvml: bool = True):
        self.rapl = rapl_domains(rapl_root)
        self.gpus = _nvml_handles() if use_nvml else []
        self.watts_per_core = float(os.environ.get("CKG_WATTS_PER_CORE") or DEFAULT_WATTS_PER_CORE)

    def start(self) -> dict:
        """Readings to pass to :meth:`stop`."""
        return {
            "rapl": [d.read() for d in self.rapl],
            "nvml": [_nvml_energy_mj(h) for h in self.gpus],
        }

    def stop(self, mark: dict, *, cpu_s: float) -> list[Figure]:
        """Energy since ``mark`` in joules: RAPL and NVML where present, else the estimate.

        One figure per device (``cpu``, ``gpu0``, ...) and their total, see :func:`with_total`.
        """
        figures = []
        if self.rapl:
            pairs = zip(self.rapl, mark["rapl"], strict=True)
            joules = sum(counter_delta(b, d.read(), d.max_range) for d, b in pairs) / 1e6
            names = "+".join(d.name for d in self.rapl)
            figures.append(Figure("energy", [joules], "J", "rapl", "cpu", {"domains": names}))
        for index, (handle, before) in enumerate(zip(self.gpus, mark["nvml"], strict=True)):
            joules = (_nvml_energy_mj(handle) - before) / 1e3
            figures.append(Figure("energy", [joules], "J", "nvml", f"gpu{index}"))
        if not self.rapl:
            figures.append(
                Figure(
                    "energy",
                    [cpu_s * self.watts_per_core],
                    "J",
                    "estimate:tdp",
                    "cpu",
                    {"watts_per_core": self.watts_per_core},
                )
            )
        return with_total(figures)


def with_total(parts: list[Figure]) -> list[Figure]:
    """The per-device energy figures plus their total, the run's ``energy`` (no device).

    A run's energy is what every measured device drew: the CPU (RAPL or the estimate) and
    each GPU (NVML). A single part is the total itself.

    >>> cpu = Figure("energy", [10.0], "J", "rapl", "cpu")
    >>> gpu = Figure("energy", [500.0], "J", "nvml", "gpu0")
    >>> [(f.device, f.method, f.values) for f in with_total([cpu, gpu])]
    [('cpu', 'rapl', [10.0]), ('gpu0', 'nvml', [500.0]), ('', 'rapl+nvml', [510.0])]
    >>> [(f.device, f.method, f.values) for f in with_total([cpu])]
    [('', 'rapl', [10.0])]
    """
    if len(parts) == 1:
        only = parts[0]
        return [Figure(only.metric, only.values, only.unit, only.method, "", only.extra)]
    total = Figure(
        "energy",
        [sum(p.values[0] for p in parts)],
        "J",
        "+".join(p.method for p in parts),
        "",
        {"devices": "+".join(p.device for p in parts)},
    )
    return [*parts, total]


def _nvml_handles() -> list:
    # Without the NVIDIA driver there is no GPU to meter; importing pynvml alone costs
    # about 15 ms of every run.
    if not any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidiactl")):
        return []
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        for handle in handles:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError:
        # No driver, or a GPU older than Volta without the energy counter.
        return []
    return handles


def _nvml_energy_mj(handle) -> int:
    import pynvml

    return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)


# --- metrics from result files ------------------------------------------------------


def result_metrics(workdir: Path, log_tail: str = "") -> dict[str, tuple[float, str]]:
    """Metrics a step reported: name -> (value, unit), names as written.

    Reads the final JSON object line of ``log_tail``, then :data:`RESULT_FILES` in
    ``workdir``; a later source overrides an earlier one for the same name.

    Raises
    ------
    InvalidInput
        When a result file exists but is not valid JSON.

    Examples
    --------
    >>> result_metrics(Path("/nonexistent"), 'log line\\n{"accuracy": 0.9}\\n')
    {'accuracy': (0.9, '')}
    """
    found = dict(metrics_of(_last_json_line(log_tail)))
    for name in RESULT_FILES:
        path = workdir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{path}: not valid JSON: {exc}") from None
        found.update(metrics_of(data))
    return found


def metrics_of(data) -> dict[str, tuple[float, str]]:
    """Numeric metrics of one result record: name -> (value, unit).

    A record is a mapping of names to numbers, to ``{"value": x, "unit": u}``, or holds such a
    mapping under ``metrics``; CM writes a list of records (the last wins). A number's unit
    comes from a sibling ``<name>_Units`` / ``<name>_unit`` string (CM's ``Result_Units``).

    >>> metrics_of({"Result": 120.5, "Result_Units": "Samples/s", "return": 0})
    {'Result': (120.5, 'Samples/s')}
    >>> metrics_of({"metrics": {"f1": {"value": 0.7, "unit": ""}}})
    {'f1': (0.7, '')}
    """
    if isinstance(data, list):
        merged: dict[str, tuple[float, str]] = {}
        for item in data:
            merged.update(metrics_of(item))
        return merged
    if not isinstance(data, dict):
        return {}
    if isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    found = {}
    for name, value in data.items():
        if name in _NOT_METRICS:
            continue
        unit = data.get(f"{name}_Units") or data.get(f"{name}_unit") or ""
        if isinstance(value, dict) and _is_number(value.get("value")):
            found[name] = (float(value["value"]), str(value.get("unit") or unit))
        elif _is_number(value):
            found[name] = (float(value), str(unit))
    return found


def canonical_metrics(raw: dict[str, tuple[float, str]]) -> dict[str, tuple[float, str]]:
    """``raw`` with names mapped through the metric registry; units stay as written.

    A name the registry does not know whose unit names a metric (CM's ``Result`` with
    ``Result_Units: Samples/s``) takes that metric's name.
    """
    from ckg.core import metrics

    mapped = {}
    for name, (value, unit) in raw.items():
        metric = metrics.get(name) or (unit and metrics.get(unit)) or metrics.resolve(name)
        mapped[metric.name] = (value, unit)
    return mapped


def _last_json_line(text: str):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                return None
        return None
    return None


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
