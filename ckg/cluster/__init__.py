"""Deprecated: ckg.cluster moved to ckg.run.cluster in 0.2; this alias goes in 0.3."""
