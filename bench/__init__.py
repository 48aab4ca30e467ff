"""Benchmarks for New Visions (issue 8): `python -m bench [--quick] [--only NAME]` (see bench/README.md)."""
