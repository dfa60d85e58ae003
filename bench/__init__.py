"""Load and micro benchmarks for tistate (not part of the test suite): `python -m bench --help`."""
