"""Importers: pure functions from a file tree to records; they never write."""
