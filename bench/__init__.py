"""Benchmarks: each prints one JSON line per figure, with a reference measured in the same run."""
