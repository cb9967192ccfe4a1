"""Benchmarks of the money paths, each figure beside a baseline measured in the same run."""
