"""Container images: Dockerfiles and image archives as artifacts of format ``container``.

**Dockerfiles** (``Dockerfile*``, ``*.dockerfile``) are artifacts of kind ``dockerfile``,
alias the folder's name (``dockerfile`` at the root) with any suffix of the file's name
(``Dockerfile.gpu`` in ``app/`` is ``app-gpu``). Their ``meta`` holds the build ``stages``
(each ``FROM image [AS name]`` with the stages its ``COPY --from=`` copies from), the
``parameters`` (``ARG`` names and defaults: build arguments), ``env``, ``labels``, and the last
stage's ``entrypoint``, ``cmd``, ``workdir`` and ``expose``. Every image a ``FROM`` or a
``COPY --from=`` names that is not an earlier stage (nor ``scratch``) is a
:class:`~ckg.core.records.Dependency` of kind ``docker`` tagged ``docker-image,<name>`` with its tag
or digest as ``version`` (``meta.docker`` lists them as a CM meta lists its ``deps``);
``${ARG}`` in them is replaced by the argument's default.

**Image archives** are artifacts of kind ``image``, one per image they hold:

- a ``docker save`` archive (``manifest.json`` listing ``Config`` and ``Layers``), as a
  ``.tar`` file or an extracted folder;
- an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``), as a ``.tar``
  file or a folder; nested indexes (several platforms) are followed.

Their ``meta`` holds the reference (``ref``, from ``RepoTags`` or the
``org.opencontainers.image.ref.name`` annotation), ``architecture``, ``os``, ``env``,
``entrypoint``, ``cmd``, ``labels``, ``workdir``, the ``layers`` (digests of the blobs) and
``diff_ids``, the ``base`` image (the ``org.opencontainers.image.base.name`` annotation or
label) and the ``history`` (what built each layer). Tags are
``container-image,docker-image,<name>`` so that a ``FROM`` of another artifact finds it; the
base image is a ``docker`` dependency. Every blob read is checked against its sha256 (a blob's
name or descriptor digest, a layer's uncompressed ``diff_id``): a mismatch is a warning.

An image archive is read under one budget of :class:`ckg.formats.archives.Limits` (bytes,
members, ratio) shared by all its images, since a manifest may name the same config or layer
any number of times: each JSON document is parsed once, by the guarded
:func:`ckg.formats.loaders.load`; entries naming the same config and layers (or the same OCI
manifest) are one image; every image counts its config and the layers it unpacks. Past the
bound, one warning names the archive and how many images were not read; the images read
before it are kept, each whole.

Layers are hostile archives too: each is streamed (never extracted whole), member names
are checked by :func:`ckg.formats.archives.member_path`, links and devices are not followed or
made, and whiteouts (``.wh.<name>``, ``.wh..wh..opq``) remove what earlier layers added. Only the
files that make CM/MLC artifacts and notebooks (meta files, ``*.ipynb``) are copied, into a
temporary folder read by :mod:`ckg.formats.cm`, :mod:`ckg.formats.mlc` and
:mod:`ckg.formats.notebook`. What they find becomes artifacts of their own format with uids
derived from the image and the path inside it (``meta.in_image`` says which image and where;
``ckg run`` refuses them), linked ``(image)-[:HOLDS {path}]->(artifact)``.

A tar file that holds no image is left alone; an image archive that cannot be read, or a
layer that breaks a bound, is one warning naming it, and the rest of the source is read.
"""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ckg.core.errors import ArchiveTooLarge, UnsafeArchive
from ckg.core.records import Dependency, Edge, Node, Problem, Records
from ckg.formats.archives import Limits, _Budget, member_path
from ckg.formats.cmlike import derived_uid
from ckg.formats.detect import detect_formats, is_dockerfile
from ckg.formats.files import open_file, read_file
from ckg.formats.loaders import digest, json_text, load, relpath

#: Largest JSON document (manifest, index, config) read from an image.
MAX_JSON_BYTES = 16 << 20
#: Files copied out of layers: what makes CM, MLC and CK artifacts, and notebooks.
WANTED_NAMES = frozenset({"_cm.yaml", "_cm.json", "cmr.yaml", "meta.yaml", "meta.json"})
BASE_KEYS = ("org.opencontainers.image.base.name",)
BASE_DIGEST_KEYS = ("org.opencontainers.image.base.digest",)
REF_KEY = "org.opencontainers.image.ref.name"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
#: The file that stands for an image folder (OCI layout, docker save) in ingest: it names
#: every manifest by digest, so it changes whenever an image in the folder does.
FOLDER_UNITS = ("index.json", "manifest.json")
_HEX = re.compile(r"[0-9a-f]{64}")
_VAR = re.compile(r"\$(?:\{(\w+)(?::?[-+][^}]*)?\}|(\w+))")


class BadImage(ValueError):
    """An image archive ckg cannot read: the message says what is wrong."""


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of the Dockerfiles and image archives ``files`` (all detected when None)."""
    root = Path(root)
    if files is None:
        files = detect_formats(root).get("container", [])
    out = Records()
    limits = Limits.from_env()
    for path in files:
        path = Path(path)
        path = path if path.is_absolute() else root / path
        rel = relpath(path, root)
        if is_dockerfile(path.name):
            _guard(
                out,
                rel,
                "Dockerfile",
                lambda scratch, p=path: read_dockerfile(root, source_uid, p, scratch),
            )
            continue
        _guard(
            out,
            rel,
            "container image",
            lambda scratch, p=path: _read_archive(root, source_uid, p, scratch, limits),
        )
    return out


def _guard(out: Records, rel: str, what: str, read_one: Callable[[Records], None]) -> None:
    """One file's records, or one warning naming it when it cannot be read."""
    scratch = Records()
    try:
        read_one(scratch)
    except (
        BadImage,
        UnsafeArchive,
        tarfile.TarError,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:
        out.warnings.append(Problem(rel, f"not a readable {what}: {exc}"))
    else:
        out.extend(scratch)


# --- Dockerfiles --------------------------------------------------------------------------


def dockerfile_meta(text: str) -> dict[str, Any]:
    """What a Dockerfile declares: stages, build arguments, env, labels, the last stage's
    entrypoint, cmd, workdir and exposed ports. Instructions are read, never run.

    >>> m = dockerfile_meta("ARG PY=3.12\\nFROM python:${PY}-slim AS build\\n"
    ...                     "FROM scratch\\nCOPY --from=build /app /app\\nLABEL a=b\\n")
    >>> [(s["from"], s["name"], s["copies_from"]) for s in m["stages"]]
    [('python:3.12-slim', 'build', []), ('scratch', '', ['build'])]
    >>> m["parameters"], m["labels"]
    ({'PY': '3.12'}, {'a': 'b'})
    """
    meta: dict[str, Any] = {"stages": [], "parameters": {}, "env": {}, "labels": {}}
    known: dict[str, str] = {}
    for line, instruction, rest in _instructions(text):
        word = instruction.upper()
        if word == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                raise ValueError(f"line {line}: FROM names no image")
            named = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            meta["stages"].append(
                {"from": _expand(words[0], known), "name": named, "line": line, "copies_from": []}
            )
        elif word == "ARG":
            for name, value in _pairs(rest, allow_bare=True).items():
                meta["parameters"][name] = value
                known.setdefault(name, value)
        elif word in ("ENV", "LABEL"):
            target = meta["env" if word == "ENV" else "labels"]
            target.update(_pairs(rest, allow_bare=False))
        elif word == "COPY" and meta["stages"]:
            for flag in rest.split():
                if flag.startswith("--from="):
                    meta["stages"][-1]["copies_from"].append(_expand(flag[7:], known))
        elif word in ("ENTRYPOINT", "CMD", "WORKDIR", "EXPOSE", "USER"):
            meta[word.lower()] = _command(rest) if word in ("ENTRYPOINT", "CMD") else rest
    if not meta["stages"]:
        raise ValueError("no FROM instruction: not a Dockerfile")
    return meta


def read_dockerfile(root: Path, source_uid: str, path: Path, out: Records) -> None:
    raw = read_file(path, root)
    rel = relpath(path, root)
    meta = dockerfile_meta(raw.decode("utf-8", errors="replace").replace("\0", "\ufffd"))
    meta["file"] = path.name
    meta["docker"] = _images_needed(meta["stages"])  # as a CM meta lists its deps
    folder = relpath(path.parent, root)
    low = path.name.lower()
    suffix = (low[: -len(".dockerfile")] if low.endswith(".dockerfile") else low[10:]).strip(".-_")
    base = path.parent.name if folder != "." else "dockerfile"
    alias = f"{base}-{suffix}" if suffix else base
    uid = derived_uid(source_uid, rel)
    out.nodes.append(
        Node(
            "Artifact",
            uid,
            {
                "uid": uid,
                "alias": alias,
                "kind": "dockerfile",
                "format": "container",
                "tags": list(dict.fromkeys(["dockerfile", "container", alias])),
                "path": folder,
                "meta": json_text(meta),
                "digest": digest(raw),
                "source_uid": source_uid,
                "variations": [],
            },
        )
    )
    for position, entry in enumerate(meta["docker"]):
        out.dependencies.append(
            Dependency(
                uid,
                "docker",
                position,
                entry["tags"],
                entry["names"],
                version=entry["version"],
                path=rel,
                line=entry["line"],
            )
        )


def _images_needed(stages: list[dict]) -> list[dict]:
    """The dependency entries of a Dockerfile: every image a ``FROM`` or ``COPY --from=``
    names that is not an earlier stage (by name or number) nor ``scratch``."""
    entries: list[dict] = []
    earlier: set[str] = set()
    for index, stage in enumerate(stages):
        for image in [stage["from"], *stage["copies_from"]]:
            if image.lower() in earlier or image.lower() == "scratch" or image.isdigit():
                continue
            name, version = split_image(image)
            entries.append(
                {
                    "tags": ["docker-image", name],
                    "names": [image],
                    "version": version,
                    "line": stage["line"],
                }
            )
        if stage["name"]:
            earlier.add(stage["name"].lower())
        earlier.add(str(index))
    return entries


def _instructions(text: str):
    """(line, instruction, arguments) of each instruction; continuations joined, comments
    and blank lines dropped."""
    start, parts = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        joined = " ".join(p for p in parts if p)
        parts = []
        instruction, _, rest = joined.partition(" ")
        yield start, instruction, rest.strip()


def _pairs(text: str, *, allow_bare: bool) -> dict[str, str]:
    """``k=v k2="v 2"`` (or the old ``ENV k v`` form) as a dict; a bare ``ARG name`` is ""."""
    import shlex

    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if words and "=" not in words[0] and not allow_bare:
        return {words[0]: " ".join(words[1:])}
    found = {}
    for word in words:
        name, sep, value = word.partition("=")
        if sep or allow_bare:
            found[name] = value
    return found


def _command(text: str) -> list[str] | str:
    """An exec-form ``["a", "b"]`` as a list, a shell form as its text."""
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, list):
            return [str(v) for v in value]
    return text


def _expand(text: str, known: dict[str, str]) -> str:
    return _VAR.sub(lambda m: known.get(m.group(1) or m.group(2), m.group(0)), text)


# --- image archives -----------------------------------------------------------------------


class _Blobs:
    """Read-only access by name to the files of an image archive: a folder or a tar file.

    JSON documents are parsed once each by :func:`ckg.formats.loaders.load` (its guards on
    depth, numbers and text), however often the archive names them.
    """

    def __init__(self, path: Path, root: Path, limits: Limits):
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.handle: BinaryIO | None = None
        self.checked: list[tuple[str, str, str]] = []  # (name, expected sha256 or "", actual)
        self.members: dict[str, tarfile.TarInfo] = {}
        self.docs: dict[str, tuple[Any, str]] = {}
        self.scratch: tempfile.TemporaryDirectory | None = None
        if path.is_file():
            self.handle = open_file(path, root)
            self.tar = tarfile.open(fileobj=self.handle, mode="r:")
            budget = _Budget(path, limits, 0)
            for member in self.tar:  # header by header, so the member limit applies
                budget.member(member.name)
                if member.isfile():
                    self.members[str(member_path(member.name, path))] = member

    def has(self, name: str) -> bool:
        key = self._key(name)
        if self.tar is not None:
            return key in self.members
        return self._inside(self.path / key)

    def size(self, name: str) -> int:
        key = self._key(name)
        if self.tar is not None:
            return self.members[key].size
        return (self.path / key).stat().st_size

    def open(self, name: str) -> BinaryIO:
        key = self._key(name)
        if self.tar is not None:
            if key not in self.members:
                raise BadImage(f"{name!r} is not in the archive")
            return self.tar.extractfile(self.members[key])
        target = self.path / key
        if not self._inside(target):
            raise BadImage(f"{name!r} is missing, not a plain file, or reached through a link")
        return open_file(target, self.path)

    def json(self, name: str, expect: str = "") -> tuple[Any, str]:
        """A JSON document of the archive and its sha256, which is checked against
        ``expect`` when the archive names one (warnings come from :attr:`checked`)."""
        if name in self.docs:
            return self.docs[name]
        if not self.has(name):
            raise BadImage(f"{name!r} is not in the archive")
        if self.size(name) > MAX_JSON_BYTES:
            raise BadImage(f"{name!r} is larger than {MAX_JSON_BYTES} bytes")
        with self.open(name) as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:  # a folder's file grew since its size was read
            raise BadImage(f"{name!r} is larger than {MAX_JSON_BYTES} bytes")
        actual = hashlib.sha256(raw).hexdigest()
        self.checked.append((name, expect, actual))
        self.docs[name] = (self._parse(name, raw), actual)
        return self.docs[name]

    def _parse(self, name: str, raw: bytes) -> Any:
        """``raw`` through the guarded loader, which reads files: a blob's name has no
        suffix, and a tar member no file, so each is written to a scratch file first."""
        if self.scratch is None:
            self.scratch = tempfile.TemporaryDirectory(prefix="ckg-image-json-")
        folder = Path(self.scratch.name)
        (folder / "doc.json").write_bytes(raw)
        doc = load(folder / "doc.json", folder)
        if isinstance(doc, Problem):
            where = f" (line {doc.line})" if doc.line else ""
            raise BadImage(f"{name!r}{where}: {doc.message}")
        return doc.data

    def _key(self, name: str) -> str:
        return str(member_path(name, self.path))

    def _inside(self, target: Path) -> bool:
        """A plain file whose real path is inside the folder (no link leads out)."""
        real, top = os.path.realpath(target), os.path.realpath(self.path)
        return real.startswith(top + os.sep) and target.is_file() and not target.is_symlink()

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
        if self.handle is not None:
            self.handle.close()
        if self.scratch is not None:
            self.scratch.cleanup()


@dataclass
class _Image:
    """One image of an archive as its manifest and config describe it."""

    ref: str
    config: dict
    config_digest: str
    layers: list[dict]  # {"name": blob, "digest": descriptor digest or "", "media": type}
    config_size: int  # counted against the archive's bound by every image that uses it
    annotations: dict = field(default_factory=dict)
    repo_tags: list[str] = field(default_factory=list)


def _read_archive(root: Path, source_uid: str, path: Path, out: Records, limits: Limits) -> None:
    folder = path.parent if path.name in FOLDER_UNITS else path
    try:
        blobs = _Blobs(folder, root, limits)
    except tarfile.ReadError:
        return  # a .tar that is not a tar: nothing ckg reads (a data file of the source)
    try:
        if blobs.has("oci-layout") and blobs.has("index.json"):
            images, layout = _oci_images(blobs), "oci"
        elif blobs.has("manifest.json"):
            images, layout = _docker_images(blobs), "docker-save"
        elif path.is_file():
            return  # a tar of something else
        else:
            raise BadImage("neither an OCI layout (index.json) nor a docker save manifest")
        if not images:
            raise BadImage("the archive lists no image")
        rel = relpath(path, root)
        budget = _Budget(Path(rel), limits, _packed(blobs, folder, images))
        for number, image in enumerate(images):
            key = rel if len(images) == 1 else f"{rel}#{number}"
            one = Records()  # an image is read whole or not at all
            try:
                _image_records(root, source_uid, path, key, image, layout, blobs, budget, one)
            except ArchiveTooLarge as exc:
                why = str(exc).split(": ", 1)[-1]  # archives.py's messages start with a path
                out.warnings.append(
                    Problem(
                        rel, f"{why}; {len(images) - number} of its {len(images)} images not read"
                    )
                )
                break
            out.extend(one)
        for name, expect, actual in blobs.checked:
            if expect and expect != actual:
                out.warnings.append(
                    Problem(rel, f"blob {name} has sha256 {actual}, but its digest says {expect}")
                )
    finally:
        blobs.close()


def _packed(blobs: _Blobs, folder: Path, images: list[_Image]) -> int:
    """What an archive holds, for the ratio of what reading it unpacks: a tar's size, or
    the sizes of a folder's layers, each counted once."""
    if blobs.tar is not None:
        return folder.stat().st_size
    names = {layer["name"] for image in images for layer in image.layers}
    return sum(blobs.size(name) for name in names if blobs.has(name))


def _oci_images(blobs: _Blobs) -> list[_Image]:
    """The images an OCI index names, each manifest or nested index once however often it
    is named (an index naming another a hundred times, four levels deep, is 10^8 names)."""
    index, _ = blobs.json("index.json")
    images: list[_Image] = []
    pending = [(m, {}) for m in _descriptors(index, "manifests")]
    seen: set[str] = set()
    depth = 0
    while pending and depth < 4:  # an index of indexes, a few levels at most
        nested = []
        for desc, outer in pending:
            if desc["digest"] in seen:
                continue
            seen.add(desc["digest"])
            annotations = {**outer, **(desc.get("annotations") or {})}
            manifest, _ = blobs.json(_blob_name(desc["digest"]), _hex(desc["digest"]))
            if desc.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
                nested += [(m, annotations) for m in _descriptors(manifest, "manifests")]
                continue
            config_desc = manifest.get("config") or {}
            config_name = _blob_name(config_desc["digest"])
            config, sha = blobs.json(config_name, _hex(config_desc["digest"]))
            annotations = {**annotations, **(manifest.get("annotations") or {})}
            layers = [
                {
                    "name": _blob_name(d["digest"]),
                    "digest": d["digest"],
                    "media": str(d.get("mediaType") or ""),
                }
                for d in _descriptors(manifest, "layers")
            ]
            images.append(
                _Image(
                    str(annotations.get(REF_KEY) or ""),
                    config,
                    f"sha256:{sha}",
                    layers,
                    blobs.size(config_name),
                    annotations,
                )
            )
        pending, depth = nested, depth + 1
    return images


def _docker_images(blobs: _Blobs) -> list[_Image]:
    """The images of a docker save manifest; entries naming the same config and layers are
    one image, with the tags of all."""
    manifest, _ = blobs.json("manifest.json")
    if not isinstance(manifest, list):
        raise BadImage("manifest.json is not a list of images")
    images: dict[tuple, _Image] = {}
    for entry in manifest:
        config_name = str(entry["Config"])
        names = tuple(str(n) for n in entry.get("Layers") or [])
        tags = [str(t) for t in entry.get("RepoTags") or []]
        same = images.get((config_name, names))
        if same is not None:
            same.repo_tags += [t for t in tags if t not in same.repo_tags]
            same.ref = same.ref or (tags[0] if tags else "")
            continue
        named = _HEX.search(config_name)
        config, sha = blobs.json(config_name, named.group(0) if named else "")
        layers = [{"name": n, "digest": "", "media": ""} for n in names]
        images[config_name, names] = _Image(
            tags[0] if tags else "",
            config,
            f"sha256:{sha}",
            layers,
            blobs.size(config_name),
            repo_tags=tags,
        )
    return list(images.values())


def _descriptors(doc: Any, key: str) -> list[dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get(key, []), list):
        raise BadImage(f"{key} is not a list")
    found = doc.get(key) or []
    if not all(isinstance(d, dict) and isinstance(d.get("digest"), str) for d in found):
        raise BadImage(f"an entry of {key} has no digest")
    return found


def _blob_name(digest_text: str) -> str:
    algorithm, _, value = digest_text.partition(":")
    if not algorithm or not value or "/" in value or value in ("..", "."):
        raise BadImage(f"digest {digest_text!r} is not algorithm:hex")
    return f"blobs/{algorithm}/{value}"


def _hex(digest_text: str) -> str:
    algorithm, _, value = digest_text.partition(":")
    return value if algorithm == "sha256" else ""


def _image_records(
    root, source_uid, path, key, image: _Image, layout, blobs, budget: _Budget, out: Records
) -> None:
    budget.add(key, image.config_size)  # its meta is made of the config, image by image
    config = image.config if isinstance(image.config, dict) else {}
    run = config.get("config") or {}
    labels = {str(k): str(v) for k, v in (run.get("Labels") or {}).items()}
    marks = {**labels, **{str(k): str(v) for k, v in image.annotations.items()}}
    base = next((marks[k] for k in BASE_KEYS if marks.get(k)), "")
    diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
    name = split_image(image.ref)[0] if image.ref else ""
    if layout == "oci" and "/" not in image.ref and ":" not in image.ref:
        name = ""  # an OCI ref.name is often only the tag ("latest"): no name to go by
    alias = (name.rsplit("/", 1)[-1] if name else "") or _stem(path)
    found = Records()
    layer_digests, warnings = _scan_layers(
        image, diff_ids, blobs, budget, found, root, source_uid, key
    )
    uid = derived_uid(source_uid, f"{key}:image")
    meta = {
        "file": path.name,
        "layout": layout,
        "ref": image.ref,
        "repo_tags": image.repo_tags,
        "architecture": str(config.get("architecture") or ""),
        "os": str(config.get("os") or ""),
        "env": dict(_split_env(run.get("Env") or [])),
        "entrypoint": run.get("Entrypoint"),
        "cmd": run.get("Cmd"),
        "workdir": str(run.get("WorkingDir") or ""),
        "user": str(run.get("User") or ""),
        "labels": labels,
        "annotations": image.annotations,
        "config_digest": image.config_digest,
        "layers": layer_digests,
        "diff_ids": diff_ids,
        "base": {
            "name": base,
            "digest": next((marks[k] for k in BASE_DIGEST_KEYS if marks.get(k)), ""),
        },
        "docker": [
            {
                "tags": ["docker-image", split_image(base)[0]],
                "names": [base],
                "version": split_image(base)[1],
            }
        ]
        if base
        else [],
        "history": [
            str(h.get("created_by") or h.get("comment") or "")
            for h in config.get("history") or []
            if isinstance(h, dict)
        ][:100],
    }
    tags = ["container-image", "docker-image", *([name] if name else []), alias]
    folder = relpath(path.parent, root)  # the folder of the unit: a tar, or an image folder
    out.nodes.append(
        Node(
            "Artifact",
            uid,
            {
                "uid": uid,
                "alias": alias,
                "kind": "image",
                "format": "container",
                "tags": list(dict.fromkeys(tags)),
                "path": folder,
                "meta": json_text(meta),
                "digest": digest(json_text(meta).encode()),
                "source_uid": source_uid,
                "variations": [],
            },
        )
    )
    for position, entry in enumerate(meta["docker"]):
        out.dependencies.append(
            Dependency(
                uid,
                "docker",
                position,
                entry["tags"],
                entry["names"],
                version=entry["version"],
                path=key,
            )
        )
    out.warnings.extend(Problem(key, w) for w in warnings)
    _adopt(found, uid, image.ref or alias, folder, key, out)


def split_image(image: str) -> tuple[str, str]:
    """Split ``registry:5000/name:tag@sha256:...`` into name and tag (or digest).

    >>> split_image("python:3.12-slim")
    ('python', '3.12-slim')
    >>> split_image("localhost:5000/team/img")
    ('localhost:5000/team/img', '')
    """
    if "@" in image:
        name, pinned = image.split("@", 1)
        return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name, pinned
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, ""


def _stem(path: Path) -> str:
    name = path.parent.name if path.name in FOLDER_UNITS else path.name
    return name[:-4] if name.lower().endswith(".tar") else name


def _split_env(items: list) -> list[tuple[str, str]]:
    return [tuple(str(i).partition("=")[::2]) for i in items]


# --- layers -------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it and counts it against a budget."""

    def __init__(self, raw: BinaryIO, count: Callable[[int], None] | None = None):
        self.raw, self.sha, self.count = raw, hashlib.sha256(), count

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.sha.update(data)
        if self.count:
            self.count(len(data))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.readinto(bytearray(1 << 16)):
            pass


def _scan_layers(
    image: _Image,
    diff_ids,
    blobs: _Blobs,
    budget: _Budget,
    found: Records,
    root: Path,
    source_uid: str,
    key: str,
) -> tuple[list[str], list[str]]:
    """Stream every layer in order into a scratch root of wanted files; read it; return the
    layers' digests and the warnings (digest mismatches, layers left unread). Past the
    archive's bound (``budget``, shared by its images), ArchiveTooLarge."""
    digests, warnings = [], []
    with tempfile.TemporaryDirectory(prefix="ckg-image-") as scratch:
        rootfs = Path(scratch)
        for number, layer in enumerate(image.layers, 1):
            if "zstd" in layer["media"]:
                warnings.append(f"layer {number} is zstd-compressed: its files are not read")
                digests.append(layer["digest"])
                continue
            try:
                raw_sha, tar_sha = _unpack_layer(blobs, layer["name"], rootfs, budget)
            except ArchiveTooLarge:
                raise
            except (
                UnsafeArchive,
                BadImage,
                tarfile.TarError,
                OSError,
                EOFError,
                zlib.error,
            ) as exc:
                why = str(exc).split(": ", 1)[-1]  # archives.py's messages start with a path
                warnings.append(f"layer {number} ({layer['name']}): {why}; its files are not read")
                digests.append(layer["digest"])
                continue
            digests.append(layer["digest"] or f"sha256:{raw_sha}")
            if layer["digest"] and _hex(layer["digest"]) not in ("", raw_sha):
                warnings.append(
                    f"layer {number}: blob sha256 is {raw_sha}, its descriptor "
                    f"says {layer['digest']}"
                )
            if number <= len(diff_ids) and diff_ids[number - 1] != f"sha256:{tar_sha}":
                warnings.append(
                    f"layer {number}: content sha256 is {tar_sha}, the config's "
                    f"diff_id says {diff_ids[number - 1]}"
                )
        _read_inside(rootfs, source_uid, key, found)
    return digests, warnings


def _unpack_layer(blobs: _Blobs, name: str, rootfs: Path, budget: _Budget) -> tuple[str, str]:
    """Apply one layer to ``rootfs`` (wanted files only, whiteouts honoured); return the
    sha256 of the blob and of its uncompressed tar."""
    with blobs.open(name) as handle:
        raw = _Hashing(handle)
        buffered = io.BufferedReader(raw, 1 << 16)
        gzipped = buffered.peek(2)[:2] == b"\x1f\x8b"
        stream: BinaryIO = gzip.GzipFile(fileobj=buffered) if gzipped else buffered
        plain = _Hashing(stream, lambda n: budget.add(name, n))
        with tarfile.open(fileobj=io.BufferedReader(plain, 1 << 16), mode="r|") as tar:
            for member in tar:
                budget.member(member.name)
                _apply(tar, member, rootfs, blobs.path)
        # The rest (end blocks, padding) counts in the digests; bytes are counted as read.
        plain.drain()
        while buffered.read(1 << 16):
            pass
        return raw.sha.hexdigest(), plain.sha.hexdigest()


def _apply(tar: tarfile.TarFile, member: tarfile.TarInfo, rootfs: Path, archive: Path) -> None:
    rel = member_path(member.name, archive)
    base = rel.name
    if base.startswith(".wh."):
        parent = rootfs.joinpath(*rel.parent.parts)
        if base == ".wh..wh..opq":  # an opaque folder: what lower layers put there is gone
            gone = list(parent.iterdir()) if parent.is_dir() else []
        else:
            gone = [parent / base[len(".wh.") :]]
        for path in gone:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        return
    if not member.isfile() or not _wanted(rel) or member.size > MAX_JSON_BYTES:
        return  # links, devices, other files and outsized metas are neither made nor read
    target = rootfs.joinpath(*rel.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    with open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)


def _wanted(rel: PurePosixPath) -> bool:
    return rel.name in WANTED_NAMES or rel.suffix.lower() == ".ipynb"


def _read_inside(rootfs: Path, source_uid: str, key: str, out: Records) -> None:
    """Read the artifacts of the scratch root with their own importers."""
    import importlib

    detected = detect_formats(rootfs)
    for fmt, module in (("cm", "cm"), ("mlc", "mlc"), ("ck", "ck"), ("notebook", "notebook")):
        if detected.get(fmt):
            reader = importlib.import_module(f"ckg.formats.{module}")
            out.extend(reader.read(rootfs, source_uid, detected[fmt]))


def _adopt(
    found: Records, image_uid: str, ref: str, image_path: str, key: str, out: Records
) -> None:
    """Give the artifacts found inside an image uids of their own (two images, or an image
    and a repository, may hold the same script), mark them, and link them to the image."""
    renamed = {
        n.key: derived_uid(n.props["source_uid"], f"{key}!{n.props['path']}")
        for n in found.nodes
        if n.label == "Artifact"
    }

    def new(label: str, value: str) -> str:
        if label == "Artifact":
            return renamed.get(value, value)
        if label == "Variation":
            uid, _, name = value.partition(":")
            return f"{renamed.get(uid, uid)}:{name}" if uid in renamed else value
        return value

    for node in found.nodes:
        node.key = new(node.label, node.key)
        if node.label == "Variation":
            node.props["uid"] = node.key
        if node.label != "Artifact":
            continue
        inner = "/" + node.props["path"].lstrip("./")
        meta = json.loads(node.props["meta"])
        meta["in_image"] = {"image": image_uid, "ref": ref, "path": inner}
        node.props.update(
            uid=node.key, path=image_path, meta=json_text(meta), image=image_uid, image_path=inner
        )
        out.edges.append(
            Edge("HOLDS", "Artifact", image_uid, "Artifact", node.key, {"path": inner})
        )
    for edge in found.edges:
        edge.src_key = new(edge.src_label, edge.src_key)
        edge.dst_key = new(edge.dst_label, edge.dst_key)
    for dep in found.dependencies:
        dep.artifact_uid = renamed.get(dep.artifact_uid, dep.artifact_uid)
        dep.path = f"{key}!/{dep.path}"
    for warning in found.warnings:
        warning.path = f"{key}!/{warning.path}"
    out.extend(found)
