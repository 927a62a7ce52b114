"""Benchmarks (`make bench-search`, `make bench-claims`): run by hand, never by the test suite."""
