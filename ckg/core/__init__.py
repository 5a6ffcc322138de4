"""The vocabulary: records, schema, values, metrics, errors, config, process; no I/O beyond
config."""
