"""Benchmarks that print ratios against a baseline measured in the same run.

Run with ``make bench``; nothing here is a test (timings on shared machines are noisy).
"""
