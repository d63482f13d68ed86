"""``python -m benchmarks``: the same command as the ``rectax-bench`` console script."""

from benchmarks.cli import main

raise SystemExit(main())
