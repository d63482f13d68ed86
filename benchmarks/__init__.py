"""rectax's benchmark harness: ``python -m benchmarks`` (see README.md).

Nothing is imported here so that the command line can configure JAX (platform, forced host
devices) before JAX initialises its backends.
"""
