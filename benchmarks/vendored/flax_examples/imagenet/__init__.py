"""flax ``examples/imagenet/models.py``, unmodified (../NOTICE.md)."""
