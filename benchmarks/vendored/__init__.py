"""Third-party model sources used by the benchmarks, each directory with its license and NOTICE."""
