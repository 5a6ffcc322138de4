"""A ``ckg worker`` takes work from the members of its cluster only: another local user's
plain Dask client, on loopback, runs nothing there (issue 21, item 1).

Real processes: certificates from ``ckg cluster certs``, a ``dask scheduler`` with them, a
``ckg worker`` on 127.0.0.1, and the attacker, ``other_user``, through a real process.
"""

import os
import subprocess

import pytest

from tests.dask_cluster import CKG, Worker, copy_certs, make_certs, scheduler

#: Run as the other user: every way a plain Dask client has to make a worker run a function,
#: against the scheduler and against the worker's own port, without a certificate of the
#: cluster and with one of its own; one line per way, ``ran UID`` or ``refused ERROR``.
ATTACK = r"""
import asyncio, os
from distributed import Client
from distributed.core import rpc
from distributed.protocol.pickle import dumps
from distributed.security import Security

def attack():
    import os
    with open({marker!r}, "a") as out:
        out.write(f"{{os.getuid()}}\n")
    return os.getuid()

async def direct(address, security):
    args = security.get_connection_args("client") if security else {{}}
    worker = rpc(address, connection_args=args, timeout=5)
    try:
        return await worker.run(function=dumps(attack))
    finally:
        await worker.close_rpc()

own = Security.temporary()
ways = {{
    "scheduler, plain": lambda: Client("tcp://{scheduler}", timeout=5).submit(attack, pure=False)
        .result(timeout=20),
    "scheduler, own certificate": lambda: Client("tls://{scheduler}", security=own, timeout=5)
        .submit(attack, pure=False).result(timeout=20),
    "worker, plain": lambda: asyncio.run(direct("tcp://{worker}", None)),
    "worker, own certificate": lambda: asyncio.run(direct("tls://{worker}", own)),
}}
for way, attempt in ways.items():
    try:
        print(way, "ran", attempt(), flush=True)
    except Exception as exc:
        print(way, "refused", type(exc).__name__, flush=True)
"""


@pytest.fixture(scope="module")
def tls_worker(tmp_path_factory):
    """A loopback cluster as the README makes it, with one ``ckg worker`` on its own graph."""
    pytest.importorskip("distributed", reason="needs `pip install 'ckg[cluster]'`")
    root = tmp_path_factory.mktemp("cluster")
    certs = make_certs(root / "owner")
    home = root / "worker"
    copy_certs(certs, home)
    with scheduler(certs, root / "scheduler.log") as address:
        worker = Worker("victim", home, None, address).start()
        try:
            yield worker
        finally:
            worker.stop()


def test_a_dask_client_without_the_cluster_certificate_runs_nothing_on_a_worker(
    tls_worker, other_user
):
    marker = other_user.home / "ran-as"
    code = ATTACK.format(
        marker=str(marker),
        scheduler=tls_worker.scheduler.split("://")[1],
        worker=tls_worker.address.split("://")[1],
    )
    done = other_user.python(code, timeout=180)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4, done.stdout + done.stderr
    assert all(" refused " in line for line in lines), done.stdout
    assert not marker.exists(), f"the worker ran the attacker's function as {marker.read_text()}"
    # The same submission with the cluster's client certificate runs: what refused the
    # attacker is the certificate.
    with _member(tls_worker) as client:
        assert client.submit(os.getuid, pure=False).result(timeout=60) == os.getuid()


def test_a_worker_keeps_its_dask_scratch_space_in_its_private_home(tls_worker):
    """Not in /tmp/dask-scratch-space, which another user may make first, and own."""
    with _member(tls_worker) as client:
        [scratch] = client.run(lambda dask_worker: dask_worker.local_directory).values()
    assert scratch.startswith(f"{tls_worker.home}/dask-scratch-space/")


def _member(worker):
    """A Dask client of the worker's cluster, with the cluster's client certificate."""
    from distributed import Client

    from ckg.run.cluster.certs import security_for

    member = security_for(worker.scheduler, "client", worker.home / "cluster")
    return Client(worker.scheduler, security=member, timeout=20, set_as_default=False)


def test_the_certificates_are_the_owners_alone(tmp_path, other_user):
    certs = make_certs(tmp_path / "home")
    os.chmod(tmp_path, 0o755)  # the folder itself, not the way to it, keeps them private
    assert (certs.stat().st_mode & 0o777) == 0o700
    assert {f.stat().st_mode & 0o777 for f in certs.iterdir()} == {0o600}
    done = other_user.python(f"open({str(certs / 'worker.key')!r}).read()")
    assert "PermissionError" in done.stderr


def test_a_worker_refuses_a_tcp_scheduler_without_insecure(tmp_path, ckg_home):
    """The scheduler is real and plain: a worker that started would join it."""
    pytest.importorskip("distributed", reason="needs `pip install 'ckg[cluster]'`")
    with scheduler(None, tmp_path / "scheduler.log") as address:
        try:
            done = subprocess.run(
                [CKG, "worker", "--scheduler", address], capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the worker joined {address}: {exc.stderr}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"ckg: error: --scheduler {address}: a tcp:// scheduler runs what anyone who reaches "
        "it sends, another local user included; start it with the certificates of `ckg "
        "cluster certs` and give tls://, or --insecure to accept that"
    )


def test_insecure_warns_that_anyone_can_run_code_as_the_worker(tmp_path, ckg_home):
    pytest.importorskip("distributed", reason="needs `pip install 'ckg[cluster]'`")
    home = tmp_path / "worker"
    home.mkdir(mode=0o700)
    with scheduler(None, tmp_path / "scheduler.log") as address:
        worker = Worker("open", home, None, address, "--insecure").start()
        worker.stop()
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    assert worker.log.splitlines()[0] == (
        f"ckg: warning: --insecure: {address} authenticates nobody: any local user, and "
        f"anyone who reaches its port, can run code as {user} on this worker"
    )
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "ckg.yaml").write_text("alias: hello\nuid: wf-hello\nrun: 'echo hi'\n")
    subprocess.run([CKG, "ingest", str(folder)], check=True, capture_output=True, timeout=60)
    done = subprocess.run(
        [CKG, "run", "hello", "--cluster", "tcp://127.0.0.1:9", "--insecure"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stderr.splitlines()[0] == (
        "ckg: warning: --insecure: tcp://127.0.0.1:9 authenticates nobody: any local user, "
        "and anyone who reaches its port, can run code on its workers, as their users, and "
        "read what they return"
    )


@pytest.mark.parametrize(
    "damage, message",
    [
        ("none", "no cluster certificate {certs}/worker.key: make them with `ckg cluster certs"),
        (
            "chmod",
            "{certs}/worker.key can be read by other users (mode 0644): whoever reads it "
            "can run code on every worker; chmod 600 {certs}/worker.key",
        ),
    ],
)
def test_a_worker_without_private_certificates_does_not_start(ckg_home, damage, message):
    pytest.importorskip("distributed", reason="needs `pip install 'ckg[cluster]'`")
    certs = make_certs(ckg_home)
    if damage == "chmod":
        (certs / "worker.key").chmod(0o644)
    else:
        (certs / "worker.key").unlink()
    done = subprocess.run(
        [CKG, "worker", "--scheduler", "127.0.0.1:9", "--certs", str(certs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(certs=certs) in lines[0], done.stderr


def test_certificates_are_never_made_over_a_folder_that_holds_anything(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    (folder / "notes.txt").write_text("someone's")
    done = subprocess.run(
        [CKG, "cluster", "certs", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CKG_HOME": str(tmp_path)},
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"ckg: error: {folder} is not an empty folder: name a new "
        "one (a cluster's certificates are replaced by making new ones in a new folder)"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert folder.stat().st_mode & 0o777 == 0o755
