"""Shared fixtures. Each group lives in its own plugin module so that no two areas edit one file.

- ``tests/fixtures_store.py``: ``ckg_home`` (a private CKG_HOME), ``store`` (parametrized over
  the embedded FalkorDB engine and a real Neo4j, emptied before each test), ``kg``
  (a KnowledgeGraph over ``store``), ``corpora`` (the shared corpora folder or a skip).
- ``tests/fixtures_neo4j.py``: ``neo4j_uri``, a real Neo4j 5 started from Maven Central jars.
- ``tests/fixtures_users.py``: ``other_user``, a real second local account to attack from.
- ``tests/slurm_cluster.py``: ``slurm``, a real one-node Slurm (slurmctld, slurmd, munge).

The ``ckg`` commands the tests start run in their own processes (``CKG_RESIDENT=0``), as
they do without a resident; tests/test_resident.py runs them through one, and
``CKG_RESIDENT=1 pytest`` runs the whole suite so.
"""

import os

os.environ.setdefault("CKG_RESIDENT", "0")

pytest_plugins = ["tests.fixtures_neo4j", "tests.fixtures_store", "tests.fixtures_users",
                  "tests.slurm_cluster"]
