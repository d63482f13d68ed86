"""Tests of the benchmark harness (benchmarks/): case generation, timing arithmetic on fake clocks,
the retrace guard, the JSON schema, goals, compare mode, and one tiny real run on CPU.

No assertion looks at an absolute time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import pytest

from benchmarks import cli, compare, goals, runner, session
from benchmarks.cases import (
    ACTIVATIONS,
    PIECEWISE_LINEAR,
    Case,
    generate_cases,
    quick_config,
)
from benchmarks.schema import Row, validate
from benchmarks.timing import CompileCounter, Stats, interleave, pair_ratios, ratio_stats


# --------------------------------------------------------------------------- case generation
def public_activations() -> set[str]:
    """rectax's public activation functions, from its ``__all__`` (swish is silu's alias)."""
    import rectax as rx

    constructors = {"surrogate", "few_bit", "swish"}
    return {n for n in rx.__all__ if n.islower() and callable(getattr(rx, n))} - constructors


def test_registry_covers_every_rectax_activation() -> None:
    public = public_activations()
    assert len(public) >= 14
    for name in public:  # gelu has one case per form: gelu_tanh, gelu_exact
        assert name in ACTIVATIONS or f"{name}_tanh" in ACTIVATIONS, name
    assert set(PIECEWISE_LINEAR) == {
        "relu", "leaky_relu", "necro_relu", "relu6", "hard_tanh", "prelu", "rrelu",
    }  # fmt: skip
    for act in ACTIVATIONS.values():
        assert act.rectax.library == "rectax"
        assert act.baselines, act.name
        x = jax.ShapeDtypeStruct((2, 8), jnp.float32)
        for impl in act.impls:
            assert jax.eval_shape(impl.fn, x) == x, impl.label
    prelu_libs = {i.library for i in ACTIVATIONS["prelu"].baselines}
    assert {"flax.linen", "flax.nnx"} <= prelu_libs
    necro = ACTIVATIONS["necro_relu"].baselines
    assert necro[0].function == "relu"
    assert "leaky_relu" in necro[1].function


def test_quick_cases_are_the_representative_subset() -> None:
    config = quick_config("cpu")
    cases = generate_cases(config)
    ew = [c for c in cases if c.kind == "elementwise"]
    for mode in ("forward", "fwd+bwd"):
        for size in (2**12, 2**24):
            got = {
                c.activation for c in ew if c.mode == mode and c.size == size and c.dtype == "f32"
            }
            assert got == set(ACTIVATIONS)
    bf16 = [c for c in ew if c.dtype == "bf16"]
    assert bf16
    assert all(c.size == 2**24 for c in bf16)
    assert {c.activation for c in bf16} == set(config.secondary_activations or ())
    assert {c.activation for c in cases if c.mode == "mlp" and c.kind == "train"} == set(
        ACTIVATIONS
    )
    assert {c.activation for c in cases if c.kind == "memory"} == set(ACTIVATIONS)
    assert {c.kind for c in cases} == {
        "zoo",
        "elementwise",
        "train",
        "memory",
        "init",
        "multidevice",
    }


def test_case_generation_filters_and_validates() -> None:
    config = quick_config("cpu").replace(
        activations=("relu",), sizes=(2**10,), dtypes=("f16",), modes=("forward",)
    )
    assert generate_cases(config) == [Case("elementwise", "forward", "relu", 2**10, "f16")]
    with pytest.raises(ValueError, match="unknown activations"):
        generate_cases(config.replace(activations=("nope",)))
    with pytest.raises(ValueError, match="unknown modes"):
        generate_cases(config.replace(modes=("backward",)))


def test_parse_sizes() -> None:
    assert cli.parse_sizes(["10", "2^12"]) == (2**10, 2**12)
    assert cli.parse_sizes(["10:14:2,20"]) == (2**10, 2**12, 2**14, 2**20)


# --------------------------------------------------------------------------- timing on fake clocks
class FakeDevice:
    """A fake clock and launchers that 'take' scripted durations."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def clock(self) -> float:
        return self.now

    def launcher(self, label: str, durations: list[float]) -> Any:
        it = iter(durations)

        def launch() -> None:
            self.calls.append(label)
            self.now += next(it)

        return launch


def test_interleave_alternates_order_and_records_each_call() -> None:
    dev = FakeDevice()
    fns = {
        "a": dev.launcher("a", [9.0, 1.0, 2.0, 3.0, 4.0]),
        "b": dev.launcher("b", [9.0, 2.0, 2.0, 2.0, 2.0]),
    }
    t = interleave(fns, 4, warmup=1, clock=dev.clock, sync=lambda x: x, count_compiles=False)
    assert dev.calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert t.times == {"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 2.0, 2.0, 2.0]}
    assert t.stats("a") == Stats(2.5, 1.0, 4.0)


def test_ratio_is_the_median_of_per_pair_ratios() -> None:
    # Round 3 is disturbed for both variants (a drift): per-pair ratios cancel it.
    a = [1.0, 1.0, 10.0, 1.0, 1.0]
    b = [2.0, 2.0, 20.0, 2.0, 2.0]
    assert pair_ratios(a, b) == [0.5] * 5
    assert ratio_stats(a, b) == Stats(0.5, 0.5, 0.5)
    c = [1.0, 3.0, 2.0]
    d = [2.0, 2.0, 8.0]
    assert ratio_stats(c, d) == Stats(0.5, 0.25, 1.5)
    with pytest.raises(ValueError, match="unequal"):
        pair_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="repeats"):
        interleave({"a": lambda: None}, 0)


def test_elementwise_figures_from_fake_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bandwidth, roofline fraction and ratios follow from the (fake) times exactly."""
    durations = {"rectax:relu": 4.0, "jax.nn:relu": 5.0, "xla:x * one": 2.0}

    def fake_interleave(fns: dict[str, Any], repeats: int, **kwargs: Any) -> Any:
        from benchmarks.timing import Timings

        return Timings({k: [durations[k]] * repeats for k in fns}, dict.fromkeys(fns, 0))

    monkeypatch.setattr(runner, "interleave", fake_interleave)
    config = quick_config("cpu").replace(repeats=3, warmup=0, torch=False)
    ctx = runner.Context(config, jax.devices()[0])
    rows = {
        r.label: r
        for r in runner.run_elementwise(Case("elementwise", "forward", "relu", 2**10, "f32"), ctx)
    }
    mine, base, copy = rows["rectax:relu"], rows["jax.nn:relu"], rows["xla:x * one"]
    assert mine.bytes == 2 * 4 * 2**10
    assert mine.gbps == pytest.approx(mine.bytes / 4.0 / 1e9)
    assert mine.roofline_fraction == pytest.approx(2.0 / 4.0)
    assert mine.ratio == pytest.approx(0.8)
    assert base.ratio == pytest.approx(0.8)
    assert mine.baseline == "jax.nn:relu"
    assert copy.kind == "roofline"
    assert mine.temp_bytes is not None


# --------------------------------------------------------------------------- retrace guard
def test_retrace_guard_flags_a_variant_that_recompiles() -> None:
    x = jnp.ones((8, 8))
    stable = jax.jit(lambda x: x + 1)
    stable(x).block_until_ready()
    fns = {
        "stable": lambda: stable(x),
        "retraces": lambda: jax.jit(lambda x: x * 2)(x),  # a fresh function every call
    }
    t = interleave(fns, 2, warmup=0)
    assert not t.retraced("stable")
    assert t.retraced("retraces")
    assert t.compiles["retraces"] >= 2
    with CompileCounter() as counter:
        jax.jit(lambda x: x - 3)(x)
    assert counter.compiles >= 1
    assert counter.traces >= 1


# --------------------------------------------------------------------------- goals, schema, compare
def _row(**kw: Any) -> Row:
    base: dict[str, Any] = {
        "kind": "elementwise", "mode": "forward", "activation": "relu", "library": "rectax",
        "function": "relu", "dtype": "f32", "size": 2**24,
    }  # fmt: skip
    base.update(kw)
    return Row(**base)


def test_goals_pass_miss_and_margin() -> None:
    rows = [
        _row(roofline_fraction=0.95),
        _row(activation="gelu_exact", roofline_fraction=0.3),
        _row(mode="fwd+bwd", ratio=1.10),
        _row(kind="train", mode="mlp", size=0, ratio=0.9, temp_ratio=0.55),
        _row(kind="train", mode="cnn", size=0, activation="gelu_tanh", ratio=1.2, temp_ratio=1.0),
        _row(library="jax.nn", ratio=2.0),  # baselines are not held to goals
    ]
    results = goals.evaluate(rows)
    by = {(r.goal, r.activation, r.case): r for r in results}
    roof = by[("forward-roofline", "gelu_exact", "elementwise forward 2^24 f32")]
    assert roof.passed is False
    assert roof.margin == pytest.approx(-0.6)
    assert by[("fwd+bwd-ratio", "relu", "elementwise fwd+bwd 2^24 f32")].margin == pytest.approx(
        -0.05
    )
    assert by[("train-memory", "relu", "train mlp f32")].passed is True
    assert not any(r.goal == "train-memory" and r.activation == "gelu_tanh" for r in results)
    summary = {s.goal: s for s in goals.summarize(results)}
    assert (summary["forward-roofline"].passed, summary["forward-roofline"].total) == (1, 2)
    assert summary["train-time"].worst is not None
    assert summary["train-time"].worst.activation == "gelu_tanh"


def _result(rows: list[Row]) -> dict[str, Any]:
    config = quick_config("cpu")
    env = runner.environment(jax.devices()[0], None)
    return session.build_result(["--quick"], config, env, rows, goals.evaluate(rows), 1.0)


def test_json_schema_validates_and_catches_damage() -> None:
    result = json.loads(json.dumps(_result([_row(median_s=1.0, times_s=[1.0])])))
    assert validate(result) == []
    broken = dict(result, rows=[dict(result["rows"][0], median_s="fast", kind="other")])
    del broken["environment"]["jax"]
    problems = validate(broken)
    assert any("median_s" in p for p in problems)
    assert any("unknown kind" in p for p in problems)
    assert any("'jax'" in p for p in problems)
    assert Row.from_json(result["rows"][0]) == _row(median_s=1.0, times_s=[1.0])


def test_compare_reports_regressions_and_improvements(tmp_path: Path) -> None:
    old = _result(
        [
            _row(median_s=1.0),
            _row(activation="elu", median_s=1.0, temp_bytes=100),
            _row(activation="selu", median_s=1.0),
        ]
    )
    new = _result(
        [
            _row(median_s=1.5),
            _row(activation="elu", median_s=0.5, temp_bytes=100),
            _row(activation="selu", median_s=1.01),
        ]
    )
    changes = compare.compare(old, new, threshold=0.05)
    verdicts = {(c.case.split()[2], c.metric): c.verdict for c in changes}
    assert verdicts[("relu", "median_s")] == "regression"
    assert verdicts[("elu", "median_s")] == "improvement"
    assert verdicts[("elu", "temp_bytes")] == "unchanged"
    assert verdicts[("selu", "median_s")] == "unchanged"
    paths = [tmp_path / "old.json", tmp_path / "new.json"]
    for path, data in zip(paths, (old, new), strict=True):
        path.write_text(json.dumps(data))
    argv = ["compare", str(paths[0]), str(paths[1])]
    assert cli.main(argv) == 0
    assert cli.main([*argv, "--fail-on-regression"]) == 1


# --------------------------------------------------------------------------- real (tiny) runs
def test_initializers_case_skips_without_rectax_initializers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rectax.initializers", None)
    ctx = runner.Context(quick_config("cpu"), jax.devices()[0])
    rows = runner.run_init(Case("init", "init", "he_normal", 0, "f32"), ctx)
    assert [r.status for r in rows] == ["skipped"]
    assert "unavailable" in rows[0].note


def test_initializers_case_times_both_libraries() -> None:
    config = quick_config("cpu").replace(init_shapes=((16, 32),), repeats=2, warmup=0)
    ctx = runner.Context(config, jax.devices()[0])
    rows = runner.run_init(Case("init", "init", "he_normal", 0, "f32"), ctx)
    assert {r.library for r in rows} == {"rectax", "jax.nn"}
    assert all(r.status == "ok" and len(r.times_s) == 2 for r in rows)


def test_tiny_real_run_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "results" / "latest.json"
    argv = [
        "--quick", "--activations", "relu", "--sizes", "10", "--dtypes", "f32",
        "--repeats", "2", "--warmup", "0", "--host-devices", "0", "--no-torch",
        "--modes", "forward", "fwd+bwd", "mlp", "memory", "multidevice",
        "--output", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    result = json.loads(out.read_text())
    assert validate(result) == []
    assert result["environment"]["jax"] == jax.__version__
    rows = [Row.from_json(r) for r in result["rows"]]
    assert {r.kind for r in rows} == {"elementwise", "roofline", "train", "memory", "multidevice"}
    assert all(r.status == "ok" and not r.retraced for r in rows)
    timed = [r for r in rows if r.kind != "memory"]
    assert all(len(r.times_s) == 2 and r.min_s <= r.median_s <= r.max_s for r in timed)  # type: ignore[operator]
    mine = [r for r in rows if r.library == "rectax" and r.kind in ("elementwise", "train")]
    assert all(r.ratio is not None and r.compile_s is not None for r in mine)
    assert all(r.temp_bytes is not None for r in rows if r.kind == "train")
    residuals = {r.library: r.residual_bytes_per_element for r in rows if r.mode == "residuals"}
    assert residuals["rectax"] == pytest.approx(1 / 8)  # 1 bit per element
    assert result["goals"]
    md = out.with_suffix(".md").read_text()
    assert "## Goals" in md
    assert "Elementwise kernels" in md
    for name in ("throughput_f32", "memory", "ratio_heatmap"):
        png = out.with_name(f"latest_{name}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


# --------------------------------------------------------------------------- model zoo
def test_zoo_case_measures_memory_residuals_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """One zoo case at a tiny size: both libraries compiled, the ratio is rectax / jax.nn, the
    residuals are counted, and the timed pair has a median-of-pairs ratio inside its range."""
    import dataclasses

    from benchmarks import report, zoo

    tiny = {"batch": 16, "width": 64, "depth": 3}
    model = dataclasses.replace(zoo.MODELS["mlp"], memory_size=tiny, time_size=tiny)
    monkeypatch.setitem(zoo.MODELS, "mlp", model)
    config = quick_config("cpu").replace(repeats=3, warmup=0, zoo_models=("mlp",))
    cases = [c for c in generate_cases(config) if c.kind == "zoo"]
    assert cases[0] == Case("zoo", "none", "mlp", 0, "f32")
    assert {(c.mode, c.dtype) for c in cases} == {
        ("none", "f32"), ("remat", "f32"), ("remat-bits", "f32"), ("none", "bf16"),
    }  # fmt: skip
    ctx = runner.Context(config, jax.devices()[0])
    rows = {r.library: r for r in runner.run_zoo(cases[0], ctx)}
    mine, base = rows["rectax"], rows["jax.nn"]
    assert mine.status == base.status == "ok"
    assert mine.temp_ratio == pytest.approx(mine.temp_bytes / base.temp_bytes)  # type: ignore[operator]
    # 3 relu layers of 16 x 64 float32: jax.nn keeps the pre-activations, rectax 1 bit each.
    assert base.residual_bytes > mine.residual_bytes > 0  # type: ignore[operator]
    assert len(mine.times_s) == len(base.times_s) == 3
    assert mine.ratio_min <= mine.ratio <= mine.ratio_max  # type: ignore[operator]
    untimed = {r.library: r for r in runner.run_zoo(cases[1], ctx)}
    assert untimed["rectax"].temp_bytes
    assert not untimed["rectax"].times_s
    section = report.zoo_section(list(rows.values()))
    assert section.rows[0][:3] == ["mlp", "none", "f32"]
    assert all(len(h) <= 12 for h in section.headers)
