"""Deprecated: moved to :mod:`ckg.core.values` in 0.2; this alias goes in 0.3."""

import warnings

from ckg.core.values import *  # noqa: F403 - the old path keeps the module's public names

warnings.warn("ckg.values moved to ckg.core.values", DeprecationWarning, stacklevel=2)
