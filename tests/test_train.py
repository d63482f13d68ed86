"""examples/train.py: digits training smoke test, data parallelism, checkpoints, He vs Xavier."""

import argparse
from pathlib import Path

import jax
import numpy as np
import pytest
import train

import rectax as rx
from rectax import initializers


@pytest.fixture(scope="module")
def digits():
    return train.load_digits(0)


def test_digits_split_is_deterministic(digits):
    again = train.load_digits(0)
    np.testing.assert_array_equal(digits.y_test, again.y_test)
    assert digits.x_train.shape == (1438, 8, 8, 1)
    assert digits.x_test.shape == (359, 8, 8, 1)
    assert float(digits.x_train.max()) == 1.0


@pytest.mark.standard_promotion  # optax/flax promote implicitly
def test_small_relu_mlp_with_he_init_reaches_90_percent(digits):
    # Stated bar: >= 0.9 test accuracy after 5 epochs (55 AdamW steps, a few seconds).
    r = train.train(
        "mlp", rx.relu, digits, epochs=5, kernel_init=initializers.he_normal(), width=64
    )
    assert r["test_accuracy"] >= 0.9
    assert r["loss_per_epoch"][-1] < r["loss_per_epoch"][0]
    assert len(r["dead_fraction_per_epoch"]) == 5
    assert all(0.0 <= d <= 1.0 for d in r["dead_fraction_per_epoch"])
    assert train.checkpoint_roundtrip(r["params"])


@pytest.mark.standard_promotion  # optax/flax promote implicitly
def test_training_is_deterministic_given_the_seed(digits):
    kw = {"epochs": 1, "kernel_init": initializers.he_normal(), "width": 16, "record_stats": False}
    a = train.train("mlp", rx.relu, digits, seed=3, **kw)
    b = train.train("mlp", rx.relu, digits, seed=3, **kw)
    assert a["loss_per_epoch"] == b["loss_per_epoch"]


@pytest.mark.standard_promotion  # optax/flax promote implicitly
def test_sharded_step_equals_single_device(digits):
    assert jax.device_count() == 4  # conftest forces 4 host devices
    base, sharded, n = train.data_parallel_losses(digits, steps=3)
    assert n == 4
    np.testing.assert_allclose(sharded, base, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_deep_relu_mlp_kaiming_trains_xavier_stalls(digits):
    out = train.deep_he_vs_xavier(digits, epochs=3, depth=30, width=32)
    kaiming, xavier = out["kaiming"]["loss_per_epoch"], out["xavier"]["loss_per_epoch"]
    assert min(xavier) > 2.28  # stuck at log(10) = 2.303: the signal vanished (2^-30)
    assert kaiming[-1] < 2.2


def test_results_go_outside_the_source_tree_unless_asked(tmp_path, monkeypatch):
    root = Path(train.__file__).resolve().parents[1]
    assert not train.DEFAULT_OUT.resolve().is_relative_to(root)
    # What main() would write to, read where argparse hands it over (no training run).
    seen = []
    real_parse = argparse.ArgumentParser.parse_args

    def parse(self, argv=None, namespace=None):
        seen.append(real_parse(self, argv, namespace).out)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
    for argv in ([], ["--out", str(tmp_path / "run.json")]):
        with pytest.raises(SystemExit):
            train.main(argv)
    assert seen == [train.DEFAULT_OUT, tmp_path / "run.json"]
