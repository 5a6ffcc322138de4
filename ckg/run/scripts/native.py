"""A script's native part, as MLCFlow runs it: ``tmp-run.sh`` around ``run.sh``.

MLCFlow never runs ``run.sh`` directly. It writes ``tmp-state.json`` (the state), then
``tmp-run.sh``: ``#!/bin/bash``, one ``export KEY="VALUE"`` line per env key in sorted order
(a ``+KEY`` list becomes ``export KEY="a:b:${KEY}"``), and ``. "<script folder>/run.sh"``;
it runs that with ``bash -c ". ./tmp-run.sh"`` in the step's working folder, and reads back
``tmp-run-env.out`` (``KEY=VALUE`` lines) into the env and ``tmp-run-state.json`` into the
state. A ``run-<flavor>...sh`` beside ``run.sh`` wins where it fits the host
(:func:`script_path`). The same code serves customize.py's ``run_native_script``.

Everything here is plain functions over dicts and paths; the process itself runs through
:func:`ckg.run.execute.execute` (own process group, timeout, CPU time, peak memory).
"""

import json
import os
import platform
import struct
import subprocess
from pathlib import Path

from ckg.core.redact import is_secret, secret_values
from ckg.run.execute import Outcome, execute

TMP_RUN = "tmp-run.sh"
TMP_STATE = "tmp-state.json"
TMP_RUN_STATE = "tmp-run-state.json"
TMP_RUN_ENV = "tmp-run-env.out"
TMP_VER = "tmp-ver.out"
#: Files MLCFlow removes before a step runs, so that a stale output never counts.
TMP_FILES = (
    TMP_RUN_STATE,
    TMP_RUN_ENV,
    TMP_VER,
    "tmp-env.sh",
    "tmp-env-all.sh",
    TMP_STATE,
    TMP_RUN,
)

#: :func:`os_info` by the PATH its ``getconf`` is found on, the first taken as this module
#: is imported: a resident process's children (:mod:`ckg.cli.resident`) then have it, where
#: each run's child spent 0.6 ms finding and reading getconf and asking the kernel.
_os_infos: dict[str, dict] = {}


def os_info() -> dict:
    """The ``os_info`` dict MLCFlow hands to customize.py on this (POSIX) host.

    The same keys and shell templates as MLCFlow's ``get_host_os_info`` on Linux and macOS;
    ``env`` carries the ``MLC_HOST_*`` keys that every run starts with.
    """
    path = os.environ.get("PATH", os.defpath)
    if path not in _os_infos:
        name = "darwin" if platform.system().lower().startswith("darwin") else "linux"
        pbits = str(8 * struct.calcsize("P"))
        _os_infos[path] = {
            "platform": name,
            "bat_ext": ".sh",
            "set_env": 'export ${key}="${value}"',
            "env_separator": ":",
            "env_quote": '"',
            "env_var": "${env_var}",
            "set_exec_file": 'chmod 755 "${file_name}"',
            "bat_rem": "# ${rem}",
            "run_local_bat": ". ./${bat_file}",
            "run_local_bat_from_python": 'bash -c ". ./${bat_file}"',
            "run_bat": ". ${bat_file}",
            "start_script": ["#!/bin/bash", ""],
            "env": {"MLC_HOST_PLATFORM_FLAVOR": platform.machine(), "MLC_HOST_OS_TYPE": name},
            "bits": _long_bits() or pbits,
            "python_bits": pbits,
        }
    return json.loads(json.dumps(_os_infos[path]))


def _long_bits() -> str:
    """What ``getconf LONG_BIT`` prints: the bits of a C ``long`` in the getconf program's
    ABI, which is its own ELF class (32 or 64 bits; x32 is 32 too), read from its first bytes
    where it is an ELF file, not spawned on every command; asked of it otherwise (macOS)."""
    import shutil

    program = shutil.which("getconf")
    if program is None:
        return ""
    try:
        with open(program, "rb") as handle:
            head = handle.read(5)
    except OSError:
        head = b""
    if head[:4] == b"\x7fELF" and head[4:] in (b"\x01", b"\x02"):
        return "32" if head[4:] == b"\x01" else "64"
    try:
        out = subprocess.run([program, "LONG_BIT"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = out.stdout.strip()
    return text if out.returncode == 0 and 0 < len(text) < 4 else ""


def export_lines(env: dict) -> list[str]:
    """``export`` lines for ``env``, sorted by key, as MLCFlow writes them.

    >>> export_lines({"B": 'say "hi"', "+PATH": ["/opt/bin", "/x"], "L": ["a", "b"]})
    ['export PATH="/opt/bin:/x:${PATH}"', 'export B="say \\\\"hi\\\\""', 'export L="a:b"']
    """
    lines = []
    for key in sorted(env):
        value = env[key]
        name = key
        if key.startswith("+"):
            name, separator = key[1:], ":"
            if name and not name[0].isalnum():  # "+;KEY" names its own separator
                separator, name = name[0], name[1:]
            items = value if isinstance(value, list) else [value]
            value = separator.join(str(v) for v in items) + separator + "${" + name + "}"
        elif isinstance(value, list):
            value = ":".join(str(v) for v in value)
        text = str(value).replace('"', '\\"')
        lines.append(f'export {name}="{text}"')
    return lines


def script_path(env: dict, folder: Path, name: str = "run") -> Path:
    """The ``<name>.sh`` variant that fits the host, MLCFlow's way.

    With any ``<name>-*.sh`` present, the first existing of ``<name>-<flavor>-<version>-
    <platform>.sh``, ``<name>-<flavor>-<version>.sh``, ``<name>-<flavor>-<platform>.sh``,
    ``<name>-<flavor>.sh``, then the same with the flavor family, the OS type and the
    platform alone wins, the flavor and versions read from ``MLC_HOST_OS_*`` keys;
    otherwise ``<name>.sh``.
    """
    flavor = str(env.get("MLC_HOST_OS_FLAVOR", ""))
    like = str(env.get("MLC_HOST_OS_FLAVOR_LIKE", ""))
    os_type = str(env.get("MLC_HOST_OS_TYPE", ""))
    version = str(env.get("MLC_HOST_OS_VERSION", "")) if flavor else ""
    machine = str(env.get("MLC_HOST_PLATFORM_FLAVOR", ""))
    try:
        present = set(os.listdir(folder))
    except OSError:
        return folder / f"{name}.sh"
    if any(f.startswith(f"{name}-") for f in present):
        for parts in (
            (flavor, version, machine),
            (flavor, version),
            (flavor, machine),
            (flavor,),
            (like, machine),
            (like,),
            (os_type, machine),
            (os_type,),
            (machine,),
        ):
            suffix = "-".join(p for p in parts if p)
            candidate = f"{name}-{suffix}.sh" if suffix else f"{name}.sh"
            if candidate in present:
                return folder / candidate
    return folder / f"{name}.sh"


def write_run_script(
    workdir: Path, script: Path, env: dict, state: dict, hidden: tuple[str, ...] = (), export=None
) -> Path:
    """Write ``tmp-state.json`` and ``tmp-run.sh`` for ``script`` into ``workdir``; the
    ``hidden`` keys of ``env`` are named there but not exported: the process has them.
    ``export`` writes the ``export`` lines (:func:`export_lines`, MLCFlow's way)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / TMP_STATE).write_text(json.dumps(state, indent=2, sort_keys=True))
    for stale in (TMP_RUN_STATE, TMP_RUN_ENV):
        (workdir / stale).unlink(missing_ok=True)
    lines = ["#!/bin/bash", ""]
    prefix = state.get("script_prefix") or []
    if isinstance(prefix, list) and prefix:
        lines += [str(p) for p in prefix] + ["\n"]
    lines += (export or export_lines)({k: v for k, v in env.items() if k not in hidden})
    lines += [f"# {key}: a secret, from the environment" for key in hidden]
    lines += ["\n", f'. "{script}"', ""]
    path = workdir / TMP_RUN
    path.write_text("\n".join(lines))
    path.chmod(0o755)
    return path


def run_script(
    script: Path,
    *,
    env: dict,
    state: dict,
    workdir: Path,
    log_path: Path,
    timeout_s: float | None = None,
    export=None,
    read_env=None,
    stdin: int | None = None,
) -> tuple[Outcome, dict, dict]:
    """Run ``script`` through ``tmp-run.sh`` (its ``export`` lines written by ``export``)
    and read back what it exported (``tmp-run-env.out`` by ``read_env``, else
    :func:`read_env_out`); the script reads ``stdin`` (None: nothing).

    Returns
    -------
    (Outcome, dict, dict)
        The process outcome, the ``tmp-run-env.out`` keys and the ``tmp-run-state.json``
        content (both empty when the script wrote none).
    """
    secrets = secret_values(os.environ, env)
    # Secrets go to the process in its environment, never into tmp-run.sh.
    hidden = {
        k: v
        for k, v in env.items()
        if not k.startswith("+") and isinstance(v, str) and is_secret(k, v, secrets)
    }
    write_run_script(workdir, script, env, state, tuple(sorted(hidden)), export)
    outcome = execute(
        ["bash", "-c", f". ./{TMP_RUN}"],
        cwd=workdir,
        env={**os.environ, **hidden},
        log_path=log_path,
        timeout_s=timeout_s,
        secrets=secrets,
        stdin=stdin,
        tree_memory=False,  # the worker's own caller measures its whole tree
    )
    env_out = (read_env or read_env_out)(workdir / TMP_RUN_ENV)
    return outcome, env_out, read_state_out(workdir / TMP_RUN_STATE)


def read_env_out(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``tmp-run-env.out``, split at the first ``=`` and stripped,
    as MLCFlow reads them (a missing file: empty).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "tmp-run-env.out"
    >>> _ = p.write_text("A = 1\\nnot a pair\\nB=x=y\\n")
    >>> read_env_out(p)
    {'A': '1', 'B': 'x=y'}
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def read_state_out(path: Path) -> dict:
    """The JSON object in ``tmp-run-state.json`` (missing or not an object: empty)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


os_info()  # see _os_infos
