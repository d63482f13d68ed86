"""``python -m benchmarks``: the benchmark harness (benchmarks/README.md)."""

from benchmarks.cli import main

raise SystemExit(main())
