"""Benchmarks (pytest-benchmark): host seconds per run, with emulated cycles in extra_info.
Run: python -m pytest bench --benchmark-only"""
