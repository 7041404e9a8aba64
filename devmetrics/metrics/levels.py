"""Performance levels (metrics.md §7) from a benchmark set kept as data with its year."""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

LEVELS = ("elite", "high", "medium", "low")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


def benchmark_sets() -> list[str]:
    """The names of the benchmark sets shipped in devmetrics/data (levels-<name>.toml)."""
    return sorted(entry.name.removeprefix("levels-").removesuffix(".toml")
                  for entry in resources.files("devmetrics").joinpath("data").iterdir()
                  if entry.name.startswith("levels-") and entry.name.endswith(".toml"))


@cache
def load_benchmarks(name: str = "dora-2023") -> dict[str, Any]:
    """The benchmark set `devmetrics/data/levels-<name>.toml`."""
    text = resources.files("devmetrics").joinpath(f"data/levels-{name}.toml").read_text()
    return tomllib.loads(text)


def lookup(metrics: Mapping[str, Any], path: str) -> Any:
    """`a.b` reads metrics["a"]["b"]; None when any part is missing."""
    value: Any = metrics
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def level(metrics: Mapping[str, Any], tiers: list[dict[str, Any]]) -> str | None:
    """The first tier the metrics pass, else "low"; None when the metric has no value."""
    if lookup(metrics, tiers[0]["metric"]) is None:
        return None
    for tier in tiers:
        value = lookup(metrics, tier["metric"])
        if value is not None and OPERATORS[tier["op"]](value, tier["value"]):
            return str(tier["level"])
    return "low"


def levels(metrics: Mapping[str, Any], name: str = "dora-2023") -> dict[str, str | None]:
    """Level of each DORA key (deployment_frequency, lead_time, ...)."""
    benchmarks = load_benchmarks(name)
    return {
        key: level(metrics, spec["tiers"])
        for key, spec in benchmarks.items()
        if isinstance(spec, dict) and "tiers" in spec
    }
