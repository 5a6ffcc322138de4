"""Container engines: the ``docker`` commands that run an image, and steps run inside one.

ckg starts no container by itself on a host without an engine. It can say exactly what it
would run: :func:`image_commands` gives, for an ingested image or Dockerfile artifact, the
``docker load`` / ``docker build`` and ``docker run`` lines (``ckg plan`` prints them), and
:func:`wrap` turns a step's command into the ``docker run`` that ``ckg run --in-container
IMAGE`` executes where docker or podman is on ``PATH`` (:func:`find_engine`).
"""

import shlex
import shutil
import sys
from pathlib import Path

from ckg.core.errors import InvalidInput, UsageError
from ckg.core.redact import is_secret
from ckg.graph.execution import artifact_sources

ENGINES = ("docker", "podman")


def find_engine() -> str:
    """The first container engine on ``PATH``, or UsageError saying none is.

    Raises
    ------
    UsageError
        Neither docker nor podman is installed.
    """
    for engine in ENGINES:
        if shutil.which(engine):
            return engine
    raise UsageError(
        "--in-container needs a container engine, and neither docker nor podman is on PATH: "
        "install one, or run without --in-container"
    )


def check_image(image: str) -> str:
    """``image`` if a container engine cannot read it as an option; InvalidInput otherwise.

    The image comes from ``--in-container`` (a cluster submitter's too) or from an image
    archive's meta: ``--privileged`` there would give the step the host.

    >>> check_image("python:3.12-slim")
    'python:3.12-slim'
    >>> check_image("--privileged")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: container image '--privileged' refused: it starts with '-' \
(docker would read it as an option)
    """
    if image.startswith("-"):
        raise InvalidInput(
            f"container image {image!r} refused: it starts with '-' "
            "(docker would read it as an option)"
        )
    return image


def docker_run(
    image: str,
    command: list[str] | None = None,
    *,
    engine: str = "docker",
    workdir: Path | None = None,
    mounts: tuple[tuple[Path, bool], ...] = (),
    env: dict[str, str] | None = None,
) -> list[str]:
    """The argument list of ``docker run`` for ``image``.

    ``mounts`` are host folders, each mounted at the same path (read-only when its flag
    says so), so that paths in the command and the environment mean the same inside.

    >>> shlex.join(docker_run("app:1", ["sh", "-c", "echo hi"], workdir=Path("/w"),
    ...                       mounts=((Path("/w"), False), (Path("/a"), True)),
    ...                       env={"A": "1", "HF_TOKEN": "hf_abcdefgh"}))
    "docker run --rm -v /w:/w -v /a:/a:ro -w /w -e A=1 -e HF_TOKEN app:1 sh -c 'echo hi'"
    """
    argv = [engine, "run", "--rm"]
    for folder, read_only in mounts:
        argv += ["-v", f"{folder}:{folder}" + (":ro" if read_only else "")]
    if workdir is not None:
        argv += ["-w", str(workdir)]
    for key, value in sorted((env or {}).items()):
        # A secret's value docker takes from its own environment, which the step's is:
        # never from a command line, which every local user can read and a run records.
        argv += ["-e", key if is_secret(key, value) else f"{key}={value}"]
    return [*argv, check_image(image), *(command or [])]


def wrap(
    command: str, image: str, *, engine: str, workdir: Path, artifact_dir: Path, env: dict[str, str]
) -> str:
    """A step's shell ``command`` as a ``docker run`` of ``image`` with the run's folder
    (read-write) and the artifact's folder (read-only) mounted at their own paths and ckg's
    variables set; this interpreter's path in the command becomes the image's ``python3``."""
    inside = command.replace(sys.executable, "python3")
    keys = {k: v for k, v in env.items() if not k.startswith("+")}
    argv = docker_run(
        image,
        ["sh", "-c", inside],
        engine=engine,
        workdir=workdir,
        mounts=((workdir, False), (artifact_dir, True)),
        env=keys,
    )
    return shlex.join(argv)


def step_commands(store, step) -> list[str]:
    """:func:`image_commands` of a planned container ``step``, with the paths on this host:
    the folder of a folder source, the archive itself when the source is the image archive;
    a Git or archive source's paths stay relative to its checkout. An image the target
    needs (a base) is only loaded: the target's ``docker run`` is the one that runs."""
    from ckg.formats.container import FOLDER_UNITS  # 50 ms (YAML, the importers): images only

    rows = [r for r in artifact_sources(store, [step.uid]) if r["source_kind"]]
    kind, location = (rows[0]["source_kind"], rows[0]["location"]) if rows else ("", "")
    meta = dict(step.meta)
    folder = step.path or "."
    if kind == "dir":
        folder = str(Path(location) / folder)
    elif kind == "tar" and folder == "." and meta.get("file") in FOLDER_UNITS:
        folder, meta["file"], meta["layout"] = str(Path(location).parent), Path(location).name, ""
    commands = image_commands(meta, step.kind, step.alias, folder)
    return commands if step.reason == "target" or step.kind != "image" else commands[:1]


def image_commands(meta: dict, kind: str, alias: str, folder: str) -> list[str]:
    """What runs an ingested image (kind ``image``) or Dockerfile (kind ``dockerfile``):
    loading or building it, then ``docker run`` with its own entrypoint and command.

    ``folder`` is the artifact's folder.

    >>> image_commands({"ref": "app:1", "file": "app.tar", "layout": "docker-save"},
    ...                "image", "app", "images")
    ['docker load -i images/app.tar', 'docker run --rm app:1']
    >>> image_commands({"file": "Dockerfile"}, "dockerfile", "svc", "svc")
    ['docker build -t ckg/svc -f svc/Dockerfile svc', 'docker run --rm ckg/svc']
    """
    from ckg.formats.container import FOLDER_UNITS  # 50 ms (YAML, the importers): images only

    where = Path(folder)
    if kind == "dockerfile":
        tag = f"ckg/{alias.lower()}"
        build = ["docker", "build", "-t", tag, "-f", str(where / meta["file"]), _operand(where)]
        return [shlex.join(build), shlex.join(docker_run(tag))]
    image = meta.get("ref") or ""
    if not image or (meta.get("layout") == "oci" and not set(image) & set(":/")):
        image = meta.get("config_digest") or alias  # a tag alone names no image: its id does
    if meta.get("file") in FOLDER_UNITS:  # an image folder: docker loads a tar of it
        load = f"tar -cC {shlex.quote(str(where))} . | docker load"
    else:
        load = shlex.join(["docker", "load", "-i", str(where / meta["file"])])
    return [load, shlex.join(docker_run(image))]


def _operand(path: Path) -> str:
    """``path`` as an operand no program reads as an option: the folder comes from the graph.

    >>> _operand(Path("-q")), _operand(Path("images"))
    ('./-q', 'images')
    """
    text = str(path)
    return "./" + text if text.startswith("-") else text
