"""Tests of the benchmark harness (benchmarks/): case generation, timing arithmetic on fake clocks,
the retrace guard, confidence intervals and verdicts, the summary and the exit status, and one
tiny real run on CPU.

No assertion looks at an absolute time.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import pytest
from _registry import PUBLIC_ACTIVATIONS, WIDENING

from benchmarks import cli, goals, report, runner
from benchmarks.cases import (
    ACTIVATIONS,
    PIECEWISE_LINEAR,
    Case,
    Impl,
    generate_cases,
    quick_config,
)
from benchmarks.runner import Row
from benchmarks.timing import (
    CompileCounter,
    Stats,
    interleave,
    median_ci,
    pair_ratios,
    ratio_stats,
)


# --------------------------------------------------------------------------- case generation
def test_registry_covers_every_rectax_activation() -> None:
    public = PUBLIC_ACTIVATIONS
    assert len(public) >= 14
    for name in public:  # gelu has one case per form: gelu_tanh, gelu_exact
        assert name in ACTIVATIONS or f"{name}_tanh" in ACTIVATIONS, name
    assert set(PIECEWISE_LINEAR) == {
        "relu", "leaky_relu", "necro_relu", "relu6", "hard_tanh", "prelu", "rrelu",
        "hard_sigmoid", "crelu",
    }  # fmt: skip
    widening = {a.api: a.width for a in WIDENING}  # the test oracle's, not the catalog's
    for act in ACTIVATIONS.values():
        assert act.rectax.library == "rectax"
        assert act.baselines, act.name
        assert act.width == widening.get(act.name, 1), act.name
        x = jax.ShapeDtypeStruct((2, 8), jnp.float32)
        y = jax.ShapeDtypeStruct((2, 8 * act.width), jnp.float32)
        for impl in act.impls:
            assert jax.eval_shape(impl.fn, x) == y, impl.label
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
    assert {c.kind for c in cases} == {"zoo", "elementwise", "train", "memory"}


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
    assert t.stats("a") == Stats(2.5, 1.0, 4.0, 1.0, 4.0)


def test_interleave_fills_its_time_budget_in_pairs_of_rounds() -> None:
    def rounds(repeats: int, budget_s: float, max_repeats: int = 100) -> int:
        dev = FakeDevice()
        fns = {"a": dev.launcher("a", [1.0] * 200), "b": dev.launcher("b", [1.0] * 200)}
        t = interleave(
            fns, repeats, warmup=0, clock=dev.clock, sync=lambda x: x, count_compiles=False,
            budget_s=budget_s, max_repeats=max_repeats,
        )  # fmt: skip
        assert len(t.times["a"]) == len(t.times["b"])
        return len(t.times["a"])

    assert rounds(3, 0.0) == 3  # no budget: exactly the minimum
    assert rounds(2, 10.0) == 6  # 2 calls of 1 s per round: 12 s >= 10 s after 6 rounds
    assert rounds(3, 10.0) == 5  # the minimum, then whole pairs: 3 + 2
    assert rounds(2, 1000.0, max_repeats=9) == 8  # capped, still in pairs
    assert rounds(6, 1.0) == 6  # the minimum stands even when the budget is spent


def test_median_ci_is_the_sign_test_interval() -> None:
    """Against the binomial coverage computed here, and the textbook cases (Conover, table A3):
    n = 10 gives the 2nd and 9th order statistics, n = 20 the 6th and 15th."""
    for n in range(1, 40):
        xs = [float(i) for i in range(n)][::-1]  # any order
        low, high = median_ci(xs)
        k = int(low) + 1
        assert high == n - k
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n
        widened = 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        if n >= 6:
            assert coverage >= 0.95 > widened or k == (n + 1) // 2
        else:
            assert (low, high) == (0.0, n - 1.0)  # too few for 95%: the range
    assert median_ci([float(i) for i in range(1, 11)]) == (2.0, 9.0)
    assert median_ci([float(i) for i in range(1, 21)]) == (6.0, 15.0)


def test_ratio_is_the_median_of_per_pair_ratios() -> None:
    # Round 3 is disturbed for both variants (a drift): per-pair ratios cancel it.
    a = [1.0, 1.0, 10.0, 1.0, 1.0]
    b = [2.0, 2.0, 20.0, 2.0, 2.0]
    assert pair_ratios(a, b) == [0.5] * 5
    assert ratio_stats(a, b) == Stats(0.5, 0.5, 0.5, 0.5, 0.5)
    c = [1.0, 3.0, 2.0]
    d = [2.0, 2.0, 8.0]
    assert ratio_stats(c, d) == Stats(0.5, 0.25, 1.5, 0.25, 1.5)
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


# --------------------------------------------------------------------------- goals and verdicts
def _row(**kw: Any) -> Row:
    base: dict[str, Any] = {
        "kind": "elementwise", "mode": "forward", "activation": "relu", "library": "rectax",
        "function": "relu", "dtype": "f32", "size": 2**24,
    }  # fmt: skip
    base.update(kw)
    return Row(**base)


def _timed(pairs: list[float], **kw: Any) -> Row:
    """A rectax row whose time ratio comes from these per-round ratios."""
    row = _row(pair_ratios=pairs, **kw)
    row.set_ratio(Stats.of(pairs))
    return row


TIGHT = [0.97, 0.98, 0.98, 0.99, 0.99, 1.00, 0.98, 0.99]  # all below 1.02
SLOW = [1.08, 1.10, 1.09, 1.11, 1.10, 1.12, 1.09, 1.10]  # all above 1.05
WIDE = [0.70, 0.85, 0.95, 1.00, 1.05, 1.15, 1.30, 1.45]  # median 1.025, straddles 1.02 and 1.05


def test_verdicts_pass_miss_and_inconclusive_on_synthetic_ratios() -> None:
    zoo = {"kind": "zoo", "mode": "none", "size": 0, "times_s": [1.0]}
    rows = [
        _timed(TIGHT, activation="mlp", **zoo),
        _timed(WIDE, activation="resnet", **zoo),
        _timed(SLOW, mode="fwd+bwd", activation="elu"),
        _timed(TIGHT, mode="fwd+bwd"),
        _timed(WIDE, mode="fwd+bwd", activation="silu"),
        _timed(SLOW, mode="fwd+bwd", library="jax.nn"),  # baselines are not held to goals
    ]
    by = {g.goal.name: g for g in goals.evaluate(rows)}
    cases = {c.case: c.verdict for c in by["zoo-time"].cases}
    assert cases == {"mlp none f32": goals.PASS, "resnet none f32": goals.INCONCLUSIVE}
    # The median alone (1.025) would be a miss of 1.02; its interval (0.70-1.45) holds the limit.
    assert goals.Goal.verdict(goals.GOALS[1], 0.70, 1.45) == goals.INCONCLUSIVE
    assert by["zoo-time"].verdict == goals.INCONCLUSIVE
    assert [c.verdict for c in by["fwd+bwd-ratio"].cases] == [
        goals.MISS, goals.PASS, goals.INCONCLUSIVE,
    ]  # fmt: skip
    assert by["fwd+bwd-ratio"].verdict == goals.MISS  # one miss outweighs the rest
    assert by["fwd+bwd-ratio"].worst is not None
    assert by["fwd+bwd-ratio"].worst.case == "elu fwd+bwd 2^24 f32"
    assert by["train-time"].verdict == goals.UNMEASURED
    only_tight = goals.evaluate([_timed(TIGHT, activation="mlp", **zoo)])
    assert only_tight[1].verdict == goals.PASS


def test_memory_and_roofline_verdicts() -> None:
    rows = [
        _row(kind="train", mode="mlp", size=0, temp_ratio=0.475),
        _row(kind="memory", mode="mlp-ref", size=0, activation="rrelu", temp_ratio=0.61),
        _row(kind="train", mode="mlp", size=0, activation="gelu_tanh", temp_ratio=0.7),
        _row(roofline_fraction=0.95, roofline_low=0.92, roofline_high=0.97),
        _row(activation="elu", roofline_fraction=0.95, roofline_low=0.85, roofline_high=1.0),
        _row(activation="selu", roofline_fraction=0.4, roofline_low=0.3, roofline_high=0.5),
        _row(activation="silu", size=2**12, roofline_fraction=0.1, roofline_low=0, roofline_high=0),
    ]  # fmt: skip
    by = {g.goal.name: g for g in goals.evaluate(rows)}
    memory = {c.case: c.verdict for c in by["train-memory"].cases}
    assert memory == {"relu mlp f32": goals.PASS, "rrelu mlp-ref f32": goals.MISS}  # not gelu
    roof = {c.case.split()[0]: c.verdict for c in by["forward-roofline"].cases}
    assert roof == {"relu": goals.PASS, "elu": goals.INCONCLUSIVE, "selu": goals.MISS}
    assert by["forward-roofline"].worst is not None
    assert by["forward-roofline"].worst.case.startswith("selu")  # lowest for a lower limit


def test_headlines_pool_rounds_and_average_memory() -> None:
    zoo = {"kind": "zoo", "mode": "none", "size": 0}
    rows = [
        _timed(TIGHT, activation="mlp", temp_ratio=0.5, **zoo),
        _timed(SLOW, activation="resnet", temp_ratio=2.0, **zoo),
        _row(activation="gpt-relu", temp_ratio=1.0, **zoo),
        _row(activation="mlp", library="jax.nn", temp_ratio=9.0, **zoo),
    ]
    heads = {h.name: h for h in goals.headlines(rows)}
    memory = heads["zoo compiled memory"]
    assert memory.value == pytest.approx(1.0)  # geometric mean of 0.5, 2, 1
    assert (memory.low, memory.high, memory.spread) == (0.5, 2.0, "range")
    time = heads["zoo step time"]
    pooled = sorted(TIGHT + SLOW)
    assert time.value == pytest.approx((pooled[7] + pooled[8]) / 2)
    assert (time.low, time.high) == median_ci(pooled)
    assert time.over == "2 models x 8 rounds"
    # Two tight but different models: the pooled interval (0.98-1.10) holds the limit.
    assert time.goal == "<= 1.02: INCONCLUSIVE"
    assert goals.headlines([_timed(TIGHT, activation="mlp", **zoo)])[0].goal.endswith("PASS")


# --------------------------------------------------------------------------- real (tiny) runs
TINY = [
    "--quick", "--activations", "relu", "--sizes", "10", "--dtypes", "f32", "--repeats", "2",
    "--warmup", "0", "--budget", "0", "--no-torch",
]  # fmt: skip


def test_tiny_real_run_writes_every_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results" / "latest.json"
    modes = ["--modes", "forward", "fwd+bwd", "mlp", "memory"]
    assert cli.main([*TINY, *modes, "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["environment"]["jax"] == jax.__version__
    rows = [Row(**r) for r in result["rows"]]
    assert {r.kind for r in rows} == {"elementwise", "roofline", "train", "memory"}
    assert all(r.status == "ok" and not r.retraced for r in rows)
    timed = [r for r in rows if r.kind != "memory"]
    assert all(len(r.times_s) == 2 and r.min_s <= r.median_s <= r.max_s for r in timed)  # type: ignore[operator]
    mine = [r for r in rows if r.library == "rectax" and r.kind in ("elementwise", "train")]
    assert all(r.ratio_low <= r.ratio <= r.ratio_high for r in mine)  # type: ignore[operator]
    assert all(len(r.pair_ratios) == 2 and r.compile_s is not None for r in mine)
    assert all(r.temp_bytes is not None for r in rows if r.kind == "train")
    residuals = {r.library: r.residual_bytes_per_element for r in rows if r.mode == "residuals"}
    assert residuals["rectax"] == pytest.approx(1 / 8)  # 1 bit per element
    assert result["goals"]["train-memory"]["verdict"] == "PASS"  # 1-bit residuals: 0.47x
    assert {h["name"] for h in result["headlines"]} >= {"MLP-ref compiled memory"}
    md = out.with_suffix(".md").read_text()
    for title in ("## Headline ratios", "## Goals", "## Elementwise kernels", "## Goals, case by"):
        assert title in md
    stdout = capsys.readouterr().out
    assert str(out.with_suffix(".md")) in stdout
    assert "train-memory" in stdout


@pytest.mark.standard_promotion  # optax promotes implicitly
def test_a_widening_activation_runs_every_mode(tmp_path: Path) -> None:
    """CReLU doubles the last axis: the cotangents, bytes and next layers follow its width."""
    out = tmp_path / "latest.json"
    tiny = [a if a != "relu" else "crelu" for a in TINY]
    modes = ["--modes", "forward", "fwd+bwd", "mlp", "cnn", "memory"]
    assert cli.main([*tiny, *modes, "--output", str(out)]) == 0
    rows = [Row(**r) for r in json.loads(out.read_text())["rows"]]
    assert all(r.status == "ok" for r in rows), [r.note for r in rows if r.status != "ok"]
    fwd_bwd = next(r for r in rows if r.mode == "fwd+bwd" and r.library == "rectax")
    assert fwd_bwd.bytes == (2 + 2 * 2) * fwd_bwd.size * 4  # x, g (2x), y (2x), dx
    residuals = {r.library: r.residual_bytes_per_element for r in rows if r.mode == "residuals"}
    assert residuals["rectax"] == pytest.approx(1 / 8)  # 1 bit per input element


def _fake_run(monkeypatch: pytest.MonkeyPatch, rows: list[Row]) -> None:
    monkeypatch.setattr(runner, "run", lambda cases, ctx, on_case=None: rows)


@pytest.mark.parametrize("columns", [None, "600"])
def test_summary_fits_100_ascii_columns(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: str | None,
) -> None:
    """Long case names, every goal and every headline: still at most 100 columns, even when the
    environment claims a wide terminal."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    long = "a_rather_long_activation_name_that_wraps"
    zoo = {"kind": "zoo", "mode": "remat-bits", "size": 0, "times_s": [1.0]}
    rows = [
        _timed(WIDE, activation=long, temp_ratio=0.9, **zoo),
        _timed(SLOW, mode="fwd+bwd", activation=long, dtype="bf16"),
        _timed(TIGHT, kind="train", mode="cnn", size=0, activation=long, temp_ratio=0.7),
        _row(roofline_fraction=0.5, roofline_low=0.4, roofline_high=0.6, activation=long),
        _row(kind="memory", mode="mlp-ref", size=0, temp_ratio=0.56),
    ]
    _fake_run(monkeypatch, rows)
    out = tmp_path / "r.json"
    assert cli.main([*TINY, "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100
    assert all(line.isascii() for line in lines)
    text = "\n".join(lines)
    for g in goals.GOALS:
        assert g.name in text
    for verdict in ("MISS", "INCONCLUSIVE", "PASS"):
        assert verdict in text
    assert "Missed" in text
    assert len(lines) < 40


def _boom(x: jax.Array) -> jax.Array:
    raise ValueError("broken on purpose")


def test_exit_status_is_1_only_when_rectax_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*TINY, "--modes", "forward", "--output", str(tmp_path / "r.json")]
    relu = ACTIVATIONS["relu"]
    broken = dataclasses.replace(relu, rectax=Impl("rectax", "relu", _boom))
    monkeypatch.setitem(ACTIVATIONS, "relu", broken)
    assert cli.main(argv) == 1
    assert "broken on purpose" in capsys.readouterr().out
    broken_baseline = dataclasses.replace(relu, baselines=(Impl("jax.nn", "relu", _boom),))
    monkeypatch.setitem(ACTIVATIONS, "relu", broken_baseline)
    assert cli.main(argv) == 0  # a failing baseline fails alone
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {r["status"] for r in rows if r["library"] == "jax.nn"} == {"error"}


def test_a_missed_goal_is_reported_but_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_run(monkeypatch, [_timed(SLOW, mode="fwd+bwd")])
    assert cli.main([*TINY, "--output", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "Missed: fwd+bwd-ratio" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["goals"]["fwd+bwd-ratio"]["verdict"] == "MISS"


# --------------------------------------------------------------------------- model zoo
def test_zoo_case_measures_memory_residuals_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """One zoo case at a tiny size: both libraries compiled, the ratio is rectax / jax.nn, the
    residuals are counted, and the timed pair has a median-of-pairs ratio inside its range."""
    from benchmarks import zoo

    tiny = {"batch": 16, "width": 64, "depth": 3}
    model = dataclasses.replace(zoo.MODELS["mlp"], memory_size=tiny, time_size=tiny)
    monkeypatch.setitem(zoo.MODELS, "mlp", model)
    config = quick_config("cpu").replace(repeats=3, warmup=0, budget_s=0.0, zoo_models=("mlp",))
    cases = [c for c in generate_cases(config) if c.kind == "zoo"]
    assert cases[0] == Case("zoo", "none", "mlp", 0, "f32")
    assert {(c.mode, c.dtype) for c in cases} == {("none", "f32"), ("remat-bits", "f32")}
    ctx = runner.Context(config, jax.devices()[0])
    rows = {r.library: r for r in runner.run_zoo(cases[0], ctx)}
    mine, base = rows["rectax"], rows["jax.nn"]
    assert mine.status == base.status == "ok"
    assert mine.temp_ratio == pytest.approx(mine.temp_bytes / base.temp_bytes)  # type: ignore[operator]
    # 3 relu layers of 16 x 64 float32: jax.nn keeps the pre-activations, rectax 1 bit each.
    assert base.residual_bytes > mine.residual_bytes > 0  # type: ignore[operator]
    assert len(mine.times_s) == len(base.times_s) == 3
    assert mine.ratio_low <= mine.ratio <= mine.ratio_high  # type: ignore[operator]
    untimed = {r.library: r for r in runner.run_zoo(cases[1], ctx)}
    assert untimed["rectax"].temp_bytes
    assert not untimed["rectax"].times_s
    table = report.zoo_rows(list(rows.values()))
    assert table[0][:3] == ["mlp", "none", "f32"]
    assert table[0][5] == f"{mine.temp_ratio:.3f}"


def test_on_device_dry_run_writes_results_named_after_the_device(tmp_path: Path) -> None:
    """``python -m benchmarks.on_device --dry-run``: the real-device script's whole path on the
    CPU (the small MLP, both libraries, one timed round), its files named after the device."""
    from benchmarks import on_device

    assert on_device.device_name("NVIDIA H200") == "nvidia-h200"
    assert on_device.main(["--dry-run", "--out", str(tmp_path)]) == 0
    kind = on_device.device_name(jax.devices()[0].device_kind)
    [written] = tmp_path.glob(f"{kind}-*-on-device.json")
    result = json.loads(written.read_text())
    [row] = result["rows"]
    assert (row["model"], row["dtype"]) == ("mlp", "f32")
    for library in ("jax.nn", "rectax"):
        assert row[library]["compiled_peak"] >= row[library]["compiled_temp"] > 0
    assert row["time"]["time_ratio"] > 0
    assert row["time"]["rounds"] >= 1
    table = written.with_suffix(".md").read_text()
    assert "| mlp | f32 |" in table
