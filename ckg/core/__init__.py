"""The vocabulary: records, schema, values, metrics, errors, config; no I/O beyond config."""
