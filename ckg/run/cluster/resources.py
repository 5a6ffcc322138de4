"""Dask resources: what a ckg worker offers, what a task asks for; which schedulers to trust.

A Dask resource is a name with a quantity; a task runs only on a worker that offers every
name it asks for. A ckg worker offers one :data:`SLOT`, which every ckg task takes, so it
runs one measured task at a time whatever its thread count (co-running tasks would disturb
latency and energy), and a plain Dask worker sharing the scheduler never gets ckg's tasks.
Besides it offers ``label=L`` for each of its labels and ``FIELD=value`` for fields of its
fingerprint (:data:`FIELDS`), lower case, so that ``--platform gpu=H200`` finds an NVIDIA
H200: a GPU is offered under its whole name and under each word of it. A worker that runs
in a Slurm job (:func:`slurm_job`) offers its partition too.
"""

import ipaddress
import os
from urllib.parse import urlsplit

from ckg.core.errors import CkgError, UsageError

SLOT = "ckg"
#: ``--platform`` fields and the fingerprint entry each is read from (``label``,
#: ``platform``, the Platform node's uid, and ``partition`` come from the worker itself).
FIELDS = {
    "label": None,
    "platform": None,
    "partition": None,
    "machine": "machine",
    "os": "os",
    "cpu": "cpu_model",
    "cores": "cores",
    "python": "python",
    "gpu": "accelerators",
}


def offered(
    fingerprint: dict, labels: list[str], platform_uid: str, partition: str = ""
) -> dict[str, float]:
    """The resources a worker with ``fingerprint`` and ``labels`` offers, one of each; with
    the ``partition`` of the Slurm job it runs in, if any.

    >>> fp = {"machine": "x86_64", "cores": 2, "accelerators": ["NVIDIA H200, 143771 MiB"]}
    >>> sorted(offered(fp, ["Lab-A"], "platform-1"))  # doctest: +NORMALIZE_WHITESPACE
    ['ckg', 'cores=2', 'gpu=h200', 'gpu=nvidia', 'gpu=nvidia h200', 'label=lab-a',
     'machine=x86_64', 'platform=platform-1']
    >>> sorted(offered({}, [], "platform-1", "gpu"))
    ['ckg', 'partition=gpu', 'platform=platform-1']
    """
    names = {SLOT, _name("platform", platform_uid)}
    if partition:
        names.add(_name("partition", partition))
    names |= {_name("label", label) for label in labels}
    for field, entry in FIELDS.items():
        value = fingerprint.get(entry) if entry else None
        if field == "gpu":
            for gpu in value or ():
                whole = gpu.split(",")[0].strip()  # "NVIDIA H200, 143771 MiB, driver ..."
                names |= {_name("gpu", whole), *(_name("gpu", w) for w in whole.split())}
        elif value not in (None, ""):
            names.add(_name(field, value))
    return dict.fromkeys(sorted(names), 1)


def required(platform: list[str] | tuple[str, ...]) -> dict[str, float]:
    """The resources a task asks for: the slot, and each ``--platform`` value, which is a
    label or ``FIELD=value``.

    >>> required(["cpu-a", "gpu=H200"])
    {'ckg': 1, 'label=cpu-a': 1, 'gpu=h200': 1}

    Raises
    ------
    UsageError
        For a field that is not one of :data:`FIELDS`, or an empty value.
    """
    wanted = {SLOT: 1}
    for spec in platform:
        field, sep, value = spec.partition("=")
        if not sep:
            field, value = "label", spec
        field = field.strip().lower()
        if field not in FIELDS or not value.strip():
            raise UsageError(
                f"--platform {spec!r}: expected a label or FIELD=VALUE with FIELD one of "
                f"{', '.join(FIELDS)}"
            )
        wanted[_name(field, value)] = 1
    return wanted


def slurm_job(environ) -> dict:
    """The Slurm job a process with ``environ`` runs in, as Slurm's variables name it:
    ``job`` id, ``node``, ``partition``, and what it was given: ``cpus``, ``memory_mb``,
    ``gpus`` (where Slurm says); empty outside a job.

    >>> slurm_job({"SLURM_JOB_ID": "12", "SLURMD_NODENAME": "n1", "SLURM_JOB_PARTITION": "gpu",
    ...            "SLURM_CPUS_PER_TASK": "8", "SLURM_MEM_PER_NODE": "32768",
    ...            "SLURM_GPUS_ON_NODE": "1"})  # doctest: +NORMALIZE_WHITESPACE
    {'job': '12', 'node': 'n1', 'partition': 'gpu', 'cpus': 8, 'memory_mb': 32768,
     'gpus': 1}
    >>> slurm_job({})
    {}
    """
    if not environ.get("SLURM_JOB_ID"):
        return {}
    job = {
        "job": environ["SLURM_JOB_ID"],
        "node": environ.get("SLURMD_NODENAME", ""),
        "partition": environ.get("SLURM_JOB_PARTITION", ""),
    }
    given = {
        "cpus": ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"),
        "memory_mb": ("SLURM_MEM_PER_NODE",),
        "gpus": ("SLURM_GPUS_ON_NODE",),
    }
    for key, names in given.items():
        value = next((environ[n] for n in names if environ.get(n, "").isdigit()), None)
        if value is not None:
            job[key] = int(value)
    return job


class Insecure(UserWarning):
    """``insecure``: a scheduler whose every client may run code on its workers."""


def check_address(address: str, flag: str, *, insecure: bool = False) -> str:
    """The scheduler ``address`` to connect to: ``tls://``, or ``tcp://`` with ``insecure``.

    Dask authenticates nobody by default: whoever reaches a ``tcp://`` scheduler (another
    user of this host through loopback included) runs code on its workers as their users.
    So an address without a scheme is TLS with the cluster's certificates
    (:mod:`ckg.run.cluster.certs`), and ``tcp://`` needs an explicit ``insecure``
    (:func:`insecure_risk` says what that allows).

    >>> check_address("127.0.0.1:8786", "--cluster")
    'tls://127.0.0.1:8786'
    >>> check_address("tcp://10.0.0.5:8786", "--cluster", insecure=True)
    'tcp://10.0.0.5:8786'

    Raises
    ------
    UsageError
        A malformed address, or ``tcp://`` without ``insecure``.
    """
    text = address if "://" in address else f"tls://{address}"
    parts = urlsplit(text)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme not in ("tcp", "tls") or not host or not port:
        raise UsageError(
            f"{flag} {address!r}: expected tls://HOST:PORT (a Dask scheduler with the "
            "certificates of `ckg cluster certs`, port 8786 by default)"
        )
    if parts.scheme == "tcp" and not insecure:
        raise UsageError(
            f"{flag} {address}: a tcp:// scheduler runs what anyone who reaches it sends, "
            "another local user included; start it with the certificates of `ckg cluster "
            "certs` and give tls://, or --insecure to accept that"
        )
    return text


def insecure_risk(address: str, role: str) -> str:
    """What ``insecure`` allows, said to the user of a ``worker`` or a ``client``.

    >>> insecure_risk("tcp://127.0.0.1:8786", "client")  # doctest: +ELLIPSIS
    '--insecure: tcp://127.0.0.1:8786 authenticates nobody: any local user, and anyone...'
    """
    whom = (
        f"as {_user()} on this worker"
        if role == "worker"
        else "on its workers, as their users, and read what they return"
    )
    return (
        f"--insecure: {address} authenticates nobody: any local user, and anyone who "
        f"reaches its port, can run code {whom}"
    )


def require_dask() -> None:
    """Refuse, in one line, when Dask distributed is not installed.

    Raises
    ------
    CkgError
        Naming the package and the extra that brings it.
    """
    try:
        import distributed  # noqa: F401 - only whether it imports
    except ImportError:
        raise CkgError(
            "--cluster and `ckg worker` need Dask distributed: pip install 'ckg[cluster]'"
        ) from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without an account, in a container
        return f"uid {os.getuid()}"


def _name(field: str, value) -> str:
    return f"{field}={str(value).strip().lower()}"
