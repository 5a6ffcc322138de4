"""The vocabulary: records, schema, values, metrics, errors, config, process; I/O only in config."""
