"""flax ``examples/lm1b/models.py``, one line changed (../NOTICE.md)."""
