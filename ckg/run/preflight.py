"""The checks every step of a plan passes before anything of it runs on this host.

A step is refused when it lies inside a container image; when ``--in-container`` is asked
of a script; when its folder source is run by a cluster worker, or its folder (or what a
link in it reaches) is not this user's alone; when its Git or archive source is not trusted
at the content ingested (:mod:`ckg.run.trust`); when the meta the graph holds is not its
source's; or when ckg does not run its format (:func:`ckg.run.steps.check_runnable`).
"""

from ckg.core.errors import RunFailed
from ckg.run import steps, trust


class Preflight:
    """Checks the steps of one command, each step's folders and meta once.

    Parameters
    ----------
    store : GraphStore
        Where a source whose meta changed is marked incomplete.
    home : Path
        ckg's home, with the trust list.
    checkouts : ckg.run.checkouts.Checkouts
        Where each step's code lies.
    trusted : bool
        ``--trust``: run untrusted sources, and folders not this user's, this once.
    folders_trusted : bool
        False on a cluster worker: a folder named by a submitter is not this host's owner's
        code, so a step from a folder source is refused.
    in_container : str
        The ``--in-container`` image, which scripts cannot run in ("" for none).
    """

    def __init__(self, store, home, checkouts, *, trusted: bool, folders_trusted: bool,
                 in_container: str):
        self.store = store
        self.home = home
        self.checkouts = checkouts
        self.trusted = trusted
        self.folders_trusted = folders_trusted
        self.in_container = in_container
        self.checked: set[str] = set()  # steps whose folders and meta passed the checks
        self.ownership = trust.Ownership()

    def check(self, executed) -> None:
        """Refuse the first of the ``executed`` steps that may not run here.

        Raises
        ------
        RunFailed
            Naming the step, why, and what to do about it.
        """
        allowed = trust.trusted(self.home)
        for step in executed:
            self._check(step, allowed)

    def _check(self, step, allowed: dict) -> None:
        inside = step.meta.get("in_image")
        if isinstance(inside, dict):
            raise RunFailed(
                f"{step.alias} lies inside container image {inside.get('ref') or '?'} "
                f"at {inside.get('path')}; ckg does not run it on this host"
            )
        if self.in_container and step.format in steps.SCRIPT_FORMATS:
            raise RunFailed(
                f"--in-container runs ckg.yaml workflows and notebooks, not the "
                f"{step.format} script {step.alias}"
            )
        info = self.checkouts.info(step.uid)
        kind = info.get("source_kind")
        if kind == "dir" and not self.folders_trusted:
            raise RunFailed(
                f"{step.alias} comes from the folder {info.get('location')}, which only "
                "the host that ingested it runs: ingest it as a Git repository or an "
                "archive to run it on a cluster"
            )
        if kind == "dir" and not self.trusted and step.uid not in self.checked:
            why = self.ownership.foreign_path(*trust.step_folders(
                step.format, self.checkouts.folder(step), info.get("location")))
            if why:
                raise RunFailed(trust.folder_refusal(step.alias, info.get("location"), why))
        if kind and kind != "dir" and not self.trusted:
            why = trust.distrust(allowed.get(step.source_uid), info.get("source_digest"))
            if why:
                raise RunFailed(
                    f"{step.alias} comes from {info.get('location')} ({kind}), {why}: "
                    f"review it, then `ckg trust {info.get('location')}` or use --trust"
                )
            # Trust is for the content reviewed; a link's target is not part of it.
            if step.uid not in self.checked:
                why = self.ownership.foreign_path(*trust.step_folders(
                    step.format, self.checkouts.folder(step), self.checkouts.root(step)))
                if why:
                    raise RunFailed(
                        f"{step.alias} comes from {info.get('location')} ({kind}), whose "
                        f"copy leads to what is not yours alone: {why}; trust covers the "
                        "content you reviewed, not what a link reaches: use --trust to "
                        "run it all the same"
                    )
        if kind and step.uid not in self.checked:
            why = trust.meta_mismatch(self.checkouts.root(step), step, self.home)
            if why:
                # Incomplete, the source is read whole by its next ingest, not skipped
                # as unchanged: that puts its own meta back.
                self.store.update_nodes("Source", [step.source_uid], {"complete": False})
                raise RunFailed(
                    f"{step.alias}: {why}; `ckg ingest {info.get('location')}` reads "
                    "the source again"
                )
            self.checked.add(step.uid)
        steps.check_runnable(step.format, step.alias, self.checkouts.folder(step))
