"""Container images as artifacts (ckg.formats.container): Dockerfiles, OCI layouts and
``docker save`` archives built here with tarfile, gzip layers and real JSON configs."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ckg.formats import container

CKG = str(Path(sys.executable).with_name("ckg"))

SCRIPT_META = b"""\
alias: hello-image
uid: 5a5a5a5a5a5a5a5a
automation_alias: script
tags: [hello, image-script]
default_env:
  MLC_GREETING: hi
"""
NOTEBOOK = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "a1",
                "metadata": {},
                "outputs": [],
                "source": "import numpy as np\nx = np.load('weights.npy')",
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
).encode()
DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PY=3.12
FROM ckg-test/base:1.0 AS build
ENV MODEL=resnet50 \\
    BATCH=8
RUN make -C /src
FROM python:${PY}-slim
COPY --from=build /opt/app /opt/app
COPY --from=ghcr.io/acme/tools:2.1 /bin/tool /bin/tool
LABEL org.opencontainers.image.title="app" maintainer=ckg
ENTRYPOINT ["python", "-m", "app"]
CMD ["--help"]
"""


def tar_bytes(files: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    """An uncompressed tar of ``files`` (and symbolic ``links``), as a layer is."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config(layers: list[bytes], *, labels: dict | None = None, env=("PATH=/usr/bin",)) -> bytes:
    """An image config as ``docker inspect`` shows it: diff_ids are the uncompressed tars."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": list(env),
                "Entrypoint": ["/bin/sh", "-c"],
                "Cmd": ["echo hi"],
                "Labels": labels or {},
                "WorkingDir": "/opt",
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha(t)}" for t in layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
    ).encode()


def oci_layout(folder: Path, ref: str, layers: list[bytes], **kw) -> Path:
    """An OCI image layout: gzip layers, config and manifest as blobs, index.json."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media: str) -> dict:
        (blobs / sha(data)).write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{sha(data)}", "size": len(data)}

    zipped = [gzip.compress(t, mtime=0) for t in layers]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(config(layers, **kw), "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(z, "application/vnd.oci.image.layer.v1.tar+gzip") for z in zipped],
        "annotations": {"org.opencontainers.image.base.name": "ckg-test/base:1.0"},
    }
    desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return folder


def docker_save(path: Path, tag: str, layers: list[bytes], **kw) -> Path:
    """A ``docker save`` archive as Docker before 25 wrote it: <id>/layer.tar, <config>.json,
    manifest.json and repositories."""
    cfg = config(layers, **kw)
    files = {f"{sha(cfg)}.json": cfg}
    names = []
    for number, layer in enumerate(layers):
        layer_id = sha(f"{number}{sha(layer)}".encode())
        files[f"{layer_id}/layer.tar"] = layer
        files[f"{layer_id}/VERSION"] = b"1.0"
        names.append(f"{layer_id}/layer.tar")
    repo, _, version = tag.rpartition(":")
    files["manifest.json"] = json.dumps(
        [{"Config": f"{sha(cfg)}.json", "RepoTags": [tag], "Layers": names}]
    ).encode()
    files["repositories"] = json.dumps({repo: {version: names[-1].split("/")[0]}}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tar_bytes(files))
    return path


def app_layers() -> list[bytes]:
    """Two layers: an MLC script repository (and a script the next layer whites out), then
    a notebook."""
    first = tar_bytes(
        {
            "opt/mlc/meta.yaml": b"alias: image-repo\nuid: 1212121212121212\n",
            "opt/mlc/script/hello-image/meta.yaml": SCRIPT_META,
            "opt/mlc/script/hello-image/run.sh": b"echo $MLC_GREETING\n",
            "opt/mlc/script/old-script/meta.yaml": SCRIPT_META.replace(
                b"hello-image", b"old-script"
            ).replace(b"5a5a", b"6b6b"),
            "usr/lib/python3/site-packages/big.bin": b"\0" * 4096,
        },
        links={"opt/escape": "../../etc/passwd"},
    )
    second = tar_bytes(
        {
            "opt/mlc/script/.wh.old-script": b"",
            "work/notebooks/analysis.ipynb": NOTEBOOK,
        }
    )
    return [first, second]


def source(tmp_path: Path) -> Path:
    root = tmp_path / "images-src"
    docker_save(
        root / "images" / "base.tar",
        "ckg-test/base:1.0",
        [tar_bytes({"etc/os-release": b"ID=ckgtest\n"})],
    )
    oci_layout(
        root / "app-oci",
        "ckg-test/app:1.0",
        app_layers(),
        labels={"org.opencontainers.image.version": "1.0"},
    )
    (root / "service").mkdir()
    (root / "service" / "Dockerfile").write_text(DOCKERFILE)
    (root / "data").mkdir()
    (root / "data" / "samples.tar").write_bytes(tar_bytes({"a.csv": b"x,y\n1,2\n"}))
    return root


def by_alias(records) -> dict:
    return {n.props["alias"]: n.props for n in records.nodes if n.label == "Artifact"}


def test_image_archives_and_dockerfile_are_artifacts_with_what_they_hold(tmp_path):
    root = source(tmp_path)
    records = container.read(root, "src")
    arts = by_alias(records)
    assert records.warnings == []
    assert set(arts) == {"base", "app", "service", "hello-image", "image-repo", "analysis"}
    base, app = json.loads(arts["base"]["meta"]), json.loads(arts["app"]["meta"])
    assert (base["layout"], base["ref"], base["architecture"], base["os"]) == (
        "docker-save",
        "ckg-test/base:1.0",
        "amd64",
        "linux",
    )
    assert app["layout"] == "oci" and app["env"] == {"PATH": "/usr/bin"}
    assert app["entrypoint"] == ["/bin/sh", "-c"] and app["cmd"] == ["echo hi"]
    assert app["base"]["name"] == "ckg-test/base:1.0"
    assert app["labels"] == {"org.opencontainers.image.version": "1.0"}
    assert len(app["layers"]) == 2 and all(d.startswith("sha256:") for d in app["layers"])
    assert "docker-image" in arts["app"]["tags"] and "ckg-test/app" in arts["app"]["tags"]
    # what the layers hold, with uids of its own, marked as inside the image
    script = arts["hello-image"]
    assert script["format"] == "mlc" and script["uid"] != "5a5a5a5a5a5a5a5a"
    assert script["image_path"] == "/opt/mlc/script/hello-image"
    assert json.loads(script["meta"])["in_image"]["image"] == arts["app"]["uid"]
    assert arts["analysis"]["format"] == "notebook"
    holds = {(e.src_key, e.dst_key) for e in records.edges if e.type == "HOLDS"}
    assert (arts["app"]["uid"], script["uid"]) in holds
    assert (arts["app"]["uid"], arts["analysis"]["uid"]) in holds
    # the base image is a dependency of the image; the FROM chain of the Dockerfile
    deps = {(d.artifact_uid, tuple(d.tags), d.version) for d in records.dependencies}
    assert (arts["app"]["uid"], ("docker-image", "ckg-test/base"), "1.0") in deps
    dockerfile = arts["service"]
    assert (dockerfile["kind"], dockerfile["format"]) == ("dockerfile", "container")
    mine = sorted(
        (d.tags[1], d.version) for d in records.dependencies if d.artifact_uid == dockerfile["uid"]
    )
    assert mine == [
        ("ckg-test/base", "1.0"),
        ("ghcr.io/acme/tools", "2.1"),
        ("python", "3.12-slim"),
    ]
    meta = json.loads(dockerfile["meta"])
    assert [s["name"] for s in meta["stages"]] == ["build", ""]
    assert meta["stages"][1]["copies_from"] == ["build", "ghcr.io/acme/tools:2.1"]
    assert meta["env"] == {"MODEL": "resnet50", "BATCH": "8"}
    assert meta["parameters"] == {"PY": "3.12"} and meta["entrypoint"] == ["python", "-m", "app"]
    assert meta["labels"]["maintainer"] == "ckg"


def test_oci_layout_as_a_tar_file_reads_like_the_folder(tmp_path):
    folder = oci_layout(tmp_path / "layout", "ckg-test/app:1.0", app_layers())
    archive = tmp_path / "src" / "app-oci.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    from_file = by_alias(container.read(tmp_path / "src", "s"))
    from_folder = by_alias(container.read(tmp_path / "layout", "s"))
    assert set(from_file) == set(from_folder) == {"app", "hello-image", "image-repo", "analysis"}
    assert (
        json.loads(from_file["app"]["meta"])["layers"]
        == json.loads(from_folder["app"]["meta"])["layers"]
    )
    # a docker save archive ingested as the source itself is read as its extracted folder
    saved = docker_save(tmp_path / "base.tar", "ckg-test/base:1.0", app_layers())
    with tarfile.open(saved) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    inside = by_alias(container.read(tmp_path / "extracted", "s"))
    assert set(inside) == {"base", "hello-image", "image-repo", "analysis"}
    assert json.loads(inside["base"]["meta"])["layout"] == "docker-save"


def test_tampered_blob_hostile_layer_and_broken_archive_are_warnings(tmp_path, monkeypatch):
    root = tmp_path / "src"
    layout = oci_layout(root / "tampered", "ckg-test/t:1", app_layers())
    layer = next(
        p for p in (layout / "blobs" / "sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b"
    )
    layer.write_bytes(gzip.compress(tar_bytes({"x": b"changed"})))
    docker_save(root / "evil.tar", "ckg-test/evil:1", [tar_bytes({"../../etc/cron": b"x"})])
    (root / "broken.tar").write_bytes(tar_bytes({"manifest.json": b"[{not json"}))
    records = container.read(root, "s")
    arts = by_alias(records)
    messages = [str(w) for w in records.warnings]
    assert {"t", "evil"} <= set(arts)  # the images are there; what could not be read is said
    assert any(m.startswith("tampered/index.json:") and "sha256" in m for m in messages)
    assert any(m.startswith("evil.tar:") and "outside" in m for m in messages)
    broken = [m for m in messages if m.startswith("broken.tar")]
    assert len(broken) == 1 and "invalid JSON" in broken[0]
    # a layer that unpacks past the byte bound is refused, not read
    monkeypatch.setenv("CKG_ARCHIVE_MAX_BYTES", "2048")
    bounded = container.read(tmp_path / "src" / "tampered", "s")
    assert any("more than 2048 bytes" in str(w) for w in bounded.warnings)
    assert "hello-image" not in by_alias(bounded)


def test_ingest_links_image_base_and_script_inside(kg, tmp_path):
    root = source(tmp_path)
    summary = kg.ingest(str(root))
    assert summary.warnings == []
    rows = kg.store.run(
        "MATCH (app:Artifact {alias: 'app', kind: 'image'})-[:DEPENDS_ON]->(base:Artifact) "
        "MATCH (app)-[h:HOLDS]->(s:Artifact {alias: 'hello-image'}) "
        "MATCH (d:Artifact {kind: 'dockerfile'})-[:DEPENDS_ON]->(b2:Artifact) "
        "RETURN base.alias AS base, h.path AS path, s.format AS fmt, b2.alias AS from_image"
    )
    assert rows == [
        {"base": "base", "path": "/opt/mlc/script/hello-image", "fmt": "mlc", "from_image": "base"}
    ]
    held = "MATCH (:Artifact {alias: 'app'})-[:HOLDS]->(a:Artifact) RETURN a.alias AS a"
    assert sorted(r["a"] for r in kg.store.run(held)) == ["analysis", "hello-image", "image-repo"]
    assert kg.ingest(str(root)).unchanged == summary.new
    # the image gone, what it held goes with it
    shutil.rmtree(root / "app-oci")
    again = kg.ingest(str(root))
    assert again.removed == 4
    assert kg.store.run("MATCH (a:Artifact) WHERE a.image IS NOT NULL RETURN count(a) AS n") == [
        {"n": 0}
    ]


@pytest.mark.parametrize("store", ["embedded"], indirect=True)  # the CLI's own engine
def test_plan_prints_the_docker_commands_and_nothing_inside_runs_here(kg, tmp_path):
    root = source(tmp_path)
    kg.ingest(str(root))
    # ckg plan says exactly what would run the image; nothing inside it runs on the host
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no docker, no podman

    def ckg(*args):
        return subprocess.run([CKG, *args], capture_output=True, text=True, env=env, timeout=60)

    done = ckg("plan", "app")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("  1. base ") and lines[2].startswith("  2. app ")
    assert lines[1] == f"       $ docker load -i {root}/images/base.tar"  # the base: loaded
    assert lines[3:5] == [
        f"       $ tar -cC {root}/app-oci . | docker load",
        "       $ docker run --rm ckg-test/app:1.0",
    ]
    done = ckg("plan", "service")
    build = f"$ docker build -t ckg/service -f {root}/service/Dockerfile {root}/service"
    assert build in done.stdout and "$ docker run --rm ckg/service" in done.stdout
    done = ckg("run", "app")
    assert done.returncode == 1 and "`ckg plan app` prints the docker commands" in done.stderr
    done = ckg("run", "hello-image")
    assert done.returncode == 1
    assert "lies inside container image ckg-test/app:1.0 at /opt/mlc/script/hello-image" in (
        done.stderr
    )
    done = ckg("run", "service", "--in-container", "ckg-test/app:1.0")
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
    assert "neither docker nor podman is on PATH" in done.stderr


def test_whiteouts_remove_what_lower_layers_added(tmp_path):
    scripts = {
        f"opt/r/script/{a}/meta.yaml": SCRIPT_META.replace(b"hello-image", a.encode()).replace(
            b"5a5a5a5a5a5a5a5a", sha(a.encode())[:16].encode()
        )
        for a in ("kept", "gone", "hidden")
    }
    scripts["srv/script/elsewhere/meta.yaml"] = SCRIPT_META.replace(b"hello-image", b"elsewhere")
    layers = [
        tar_bytes(scripts),
        tar_bytes(
            {
                "opt/r/script/.wh.gone": b"",  # one entry whited out
                "srv/script/.wh..wh..opq": b"",  # an opaque folder: all below it gone
                "srv/script/new/meta.yaml": SCRIPT_META.replace(b"hello-image", b"new").replace(
                    b"5a5a", b"7c7c"
                ),
            }
        ),
        tar_bytes({"opt/r/script/hidden/.wh.meta.yaml": b""}),
    ]
    oci_layout(tmp_path / "img", "ckg-test/w:1", layers)
    found = by_alias(container.read(tmp_path, "s"))
    assert sorted(found) == ["kept", "new", "w"]
