"""The host a run happens on: hardware and software fingerprint, and its ``Platform`` node.

Detection reads ``/proc`` and ``/sys`` where they exist, asks NVML (``pynvml``, imported
only when installed) or ``nvidia-smi`` (only when on ``PATH``) for GPUs, and reads package
versions from installed metadata without importing the packages. The ``Platform`` node is
keyed by a digest of the fingerprint, so every run on the same host and software stack
lands on the same node, and a driver or library upgrade gives a new one.

:func:`detect_cached` remembers the fingerprint in ``$CKG_HOME/platform.json`` until the host
reboots (``/proc/sys/kernel/random/boot_id``) or a package folder on ``sys.path`` changes
(an install or upgrade), so that ``ckg run`` neither spawns ``nvidia-smi`` nor reads package
metadata on every call.
"""

import hashlib
import json
import os
import platform as pyplatform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from ckg.core.records import Node

#: Packages whose versions change measured figures enough to belong in the fingerprint.
KEY_PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "tensorflow",
    "onnxruntime",
    "onnxruntime-gpu",
    "jax",
    "cmind",
    "mlcflow",
)
#: File under ``CKG_HOME`` that holds the fingerprint :func:`detect_cached` saved.
CACHE = "platform.json"


def detect() -> dict:
    """The fingerprint of this host: CPU, cores, memory, GPUs, OS, kernel, Python, packages.

    Returns
    -------
    dict
        Primitives and lists of primitives only (``accelerators`` is a list of strings,
        ``packages`` a list of ``name==version``), ready to become node properties.

    Examples
    --------
    >>> fp = detect()
    >>> fp["cores"] >= 1 and fp["memory_bytes"] > 0
    True
    """
    uname = pyplatform.uname()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "memory_bytes": _memory_bytes(),
        "accelerators": _gpus(),
        "os": _os_name(),
        "kernel": uname.release,
        "machine": uname.machine,
        "python": pyplatform.python_version(),
        "packages": _package_versions(),
        "hostname_hash": hashlib.sha256(socket.gethostname().encode()).hexdigest()[:16],
    }


def detect_cached(home: Path) -> dict:
    """:func:`detect`, read from ``home`` while the boot and the installed packages are the
    same as when it was saved; detected afresh (and saved) otherwise.

    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> detect_cached(home) == detect_cached(home) == detect()
    True
    """
    stamp = _stamp()
    if stamp is None:  # no boot id (not Linux): nothing tells when the host changed
        return detect()
    path = Path(home) / CACHE
    try:
        saved = json.loads(path.read_bytes())
        if saved["stamp"] == stamp:
            return saved["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, torn or from an older ckg: detect again
    fingerprint = detect()
    partial = path.with_name(f".{CACHE}.{os.getpid()}")
    partial.write_text(json.dumps({"stamp": stamp, "fingerprint": fingerprint}))
    os.replace(partial, path)
    return fingerprint


def _stamp() -> list | None:
    """What invalidates a saved fingerprint: the boot, the interpreter, the package folders."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    folders = []
    for entry in filter(None, sys.path):  # "" is the working folder, not an install
        try:
            folders.append([entry, os.stat(entry).st_mtime_ns])
        except OSError:
            continue
    return [boot, sys.executable, sys.version, folders]


def platform_uid(fingerprint: dict) -> str:
    """A stable id of ``fingerprint``: sha256 of its canonical JSON, first 16 hex digits.

    >>> platform_uid({"cores": 2}) == platform_uid({"cores": 2})
    True
    """
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return "platform-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def platform_node(fingerprint: dict) -> Node:
    """The ``Platform`` node of ``fingerprint``."""
    return Node("Platform", platform_uid(fingerprint), dict(fingerprint))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return pyplatform.processor() or pyplatform.machine()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        import psutil

        return psutil.virtual_memory().total


def _os_name() -> str:
    try:
        info = pyplatform.freedesktop_os_release()
        return info.get("PRETTY_NAME") or info.get("NAME") or pyplatform.system()
    except OSError:
        return f"{pyplatform.system()} {pyplatform.release()}"


def _gpus() -> list[str]:
    """GPU names with memory and driver, from NVML when importable, else ``nvidia-smi``."""
    try:
        import pynvml
    except ImportError:
        return _gpus_from_smi()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20
            gpus.append(f"{name}, {memory} MiB, driver {driver}")
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _gpus_from_smi() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append(f"{parts[0]}, {parts[1]}, driver {parts[2]}")
    return gpus


def _package_versions() -> list[str]:
    import importlib.metadata  # 10 ms: only when detecting, not when the cache answers

    found = []
    for name in KEY_PACKAGES:
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
