"""Benchmarks: real models, real text, side by side in one run (see docs/benchmarks.md)."""
