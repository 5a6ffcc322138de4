"""Deprecated: moved to :mod:`ckg.run.cluster.certs` in 0.2; this alias goes in 0.3."""

import warnings

from ckg.run.cluster.certs import *  # noqa: F403 - the old path keeps the module's public names

warnings.warn("ckg.cluster.certs moved to ckg.run.cluster.certs", DeprecationWarning, stacklevel=2)
