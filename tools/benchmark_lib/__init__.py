"""Reusable parts of ``tools/benchmark.py``: map synthesis, decoders, timing, AP."""
