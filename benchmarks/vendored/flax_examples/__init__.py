"""flax's ``examples/imagenet`` and ``examples/lm1b`` models, as flax has them (NOTICE.md)."""
