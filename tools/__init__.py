"""Developer scripts, not in the wheel; run from the repository root: ``python -m tools.<name>``."""
