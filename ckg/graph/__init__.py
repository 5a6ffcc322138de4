"""Reads of the graph that the CLI, API and web view show."""
