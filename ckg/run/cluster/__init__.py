"""A grid spread over many machines by Dask distributed, every result in one shared graph.

``ckg run TARGET --grid ... --cluster tls://HOST:8786`` sends each grid point as a task to a
Dask scheduler (:mod:`~ckg.run.cluster.submit`); ``ckg worker --scheduler tls://HOST:8786`` runs
a Dask worker that offers this host's platform and labels as resources and runs those tasks
(:mod:`~ckg.run.cluster.worker`). What a worker offers and a task asks for, and which scheduler
addresses are accepted, is :mod:`~ckg.run.cluster.resources`, which imports no Dask. Every
connection is Dask's TLS with the certificates ``ckg cluster certs`` made
(:mod:`~ckg.run.cluster.certs`): Dask runs whatever its clients send, so only the cluster's
members may be its clients; ``--insecure`` (plain ``tcp://``) gives that up, with a warning.

What travels is data: a task names its target by uid and every source the plan needs by
location and content digest (archive sha256 or Git commit). The worker fetches or reuses
that content, checks the digest and its own trust list, plans there (guards depend on the
platform), runs, and writes the Run itself into the shared store under a uid fixed when the
grid was submitted, so a task Dask re-executes after losing a worker writes one Run, never
two.

``ckg run --slurm PARTITION`` (:mod:`~ckg.run.cluster.jobqueue`) starts the scheduler in the
submitting process and the workers as Slurm jobs (or PBS, LSF, SGE, HTCondor ones) through
dask-jobqueue; they run as the submitter on a shared filesystem, so they also run folder
sources, where they see the folder as the submitter did. Dask is imported only by these
modules, so a run without ``--cluster`` or ``--slurm`` never loads it.
"""
