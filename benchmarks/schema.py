"""The JSON result format (documented field by field in README.md, "JSON schema").

A result is ``{"schema_version", "created", "argv", "quick", "environment", "config", "rows",
"goals"}``. Every measurement is a :class:`Row`; a field that does not apply is ``null``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

KINDS = ("zoo", "elementwise", "roofline", "train", "memory", "init", "multidevice")
STATUSES = ("ok", "skipped", "error")


@dataclass
class Row:
    """One measured (or skipped) implementation in one case."""

    kind: str
    mode: str
    activation: str
    library: str
    function: str
    dtype: str
    size: int = 0
    shape: list[int] | None = None
    devices: int = 1
    status: str = "ok"
    note: str = ""
    compile_s: float | None = None
    times_s: list[float] = field(default_factory=list)
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    bytes: int | None = None
    gbps: float | None = None
    roofline_gbps: float | None = None
    roofline_fraction: float | None = None
    baseline: str | None = None
    ratio: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    ratios: dict[str, float] = field(default_factory=dict)
    temp_bytes: int | None = None
    temp_ratio: float | None = None
    peak_bytes: int | None = None
    residual_bytes_per_element: float | None = None
    residual_bytes: int | None = None
    scaling: float | None = None
    efficiency: float | None = None
    compiles_during_timing: int = 0
    retraced: bool = False

    @property
    def label(self) -> str:
        return f"{self.library}:{self.function}"

    def key(self) -> tuple[Any, ...]:
        """Identity of a row across runs (used by compare mode)."""
        return (
            self.kind,
            self.mode,
            self.activation,
            self.library,
            self.function,
            self.dtype,
            self.size,
            self.devices,
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "list[float]": (list,),
    "dict[str, float]": (dict,),
    "int | None": (int, type(None)),
    "float | None": (float, int, type(None)),
    "str | None": (str, type(None)),
    "list[int] | None": (list, type(None)),
}
ROW_FIELDS: dict[str, tuple[type, ...]] = {
    f.name: _JSON_TYPES[str(f.type)] for f in dataclasses.fields(Row)
}

TOP_LEVEL: dict[str, type] = {
    "schema_version": int,
    "created": str,
    "argv": list,
    "quick": bool,
    "environment": dict,
    "config": dict,
    "rows": list,
    "goals": list,
}

ENVIRONMENT_KEYS = (
    "backend",
    "device",
    "device_kind",
    "device_count",
    "jax",
    "jaxlib",
    "flax",
    "numpy",
    "python",
    "rectax",
    "torch",
    "platform",
    "cpu_count",
    "xla_flags",
)

GOAL_KEYS = ("goal", "target", "case", "activation", "value", "limit", "passed", "margin")


def validate(result: dict[str, Any]) -> list[str]:
    """Problems with a result dictionary (empty when it follows the schema)."""
    problems: list[str] = []
    for key, kind in TOP_LEVEL.items():
        if key not in result:
            problems.append(f"missing top-level key {key!r}")
        elif not isinstance(result[key], kind):
            problems.append(f"{key!r} should be {kind.__name__}")
    if result.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version should be {SCHEMA_VERSION}")
    env = result.get("environment", {})
    problems += [f"environment lacks {k!r}" for k in ENVIRONMENT_KEYS if k not in env]
    for i, row in enumerate(result.get("rows", [])):
        for name, types in ROW_FIELDS.items():
            if name not in row:
                problems.append(f"row {i} lacks {name!r}")
            elif not isinstance(row[name], types):
                problems.append(f"row {i} field {name!r} has type {type(row[name]).__name__}")
        if row.get("kind") not in KINDS:
            problems.append(f"row {i} has unknown kind {row.get('kind')!r}")
        if row.get("status") not in STATUSES:
            problems.append(f"row {i} has unknown status {row.get('status')!r}")
    for i, goal in enumerate(result.get("goals", [])):
        problems += [f"goal {i} lacks {k!r}" for k in GOAL_KEYS if k not in goal]
    return problems
