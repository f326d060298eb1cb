"""A model's health policy: the thresholds that turn its figures into a state.

The catalog-wide defaults are settings (config.py: HEALTH_*); a model's `healthPolicy` (the
model spec) overrides any of them, and is edited, exported and kept in history like any other
field. `effective` merges the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import (
    HEALTH_MAX_P95_SECONDS,
    HEALTH_MIN_GENERATIONS,
    HEALTH_WINDOW_SECONDS,
    MINUTE_SECONDS,
    health_out_of_order,
)
from engine.errors import FunctionError
from engine.values import Object, v

SECONDS = v.nullable(v.number(exclusive_minimum=0, maximum=HEALTH_MAX_P95_SECONDS))
FIELDS = {  # the bounds are the settings' too (config.py)
    "windowSeconds": v.optional(v.int(*HEALTH_WINDOW_SECONDS, multiple_of=MINUTE_SECONDS,
                                      unit="whole minutes: usage is counted by the minute")),
    "minGenerations": v.optional(v.int(*HEALTH_MIN_GENERATIONS)),
    "degradedSuccessRate": v.optional(v.number(minimum=0, maximum=100)),
    "failingSuccessRate": v.optional(v.number(minimum=0, maximum=100)),
    "degradedP95Seconds": v.optional(SECONDS),
    "failingP95Seconds": v.optional(SECONDS),
}
HELP = (
    "overrides of the catalog-wide health thresholds (README: Health): windowSeconds, "
    "minGenerations, degradedSuccessRate and failingSuccessRate (%), degradedP95Seconds and "
    "failingP95Seconds (null: no latency rule); empty: the defaults"
)


class HealthPolicy(Object):
    """The `healthPolicy` field: known keys only, and the failing thresholds beyond the
    degraded ones when both are given."""

    def __init__(self) -> None:
        super().__init__(FIELDS)

    def check(self, value: Any, path: str) -> dict:
        checked = super().check(value, path)
        rates = checked.get("degradedSuccessRate"), checked.get("failingSuccessRate")
        times = checked.get("degradedP95Seconds"), checked.get("failingP95Seconds")
        wrong = health_out_of_order(rates, times)
        if wrong == "rate":
            raise FunctionError(
                "INVALID_ARGUMENT", f"{path}.failingSuccessRate ({rates[1]}) must not be above "
                f"degradedSuccessRate ({rates[0]})", field=f"{path}.failingSuccessRate")
        if wrong == "p95":
            raise FunctionError(
                "INVALID_ARGUMENT", f"{path}.failingP95Seconds ({times[1]}) must not be below "
                f"degradedP95Seconds ({times[0]})", field=f"{path}.failingP95Seconds")
        return checked


@dataclass(frozen=True)
class Policy:
    """The thresholds in force for one model."""

    window_seconds: int
    min_generations: int
    degraded_success_rate: float
    failing_success_rate: float
    degraded_p95_seconds: float | None
    failing_p95_seconds: float | None

    def as_dict(self) -> dict:
        return {"windowSeconds": self.window_seconds, "minGenerations": self.min_generations,
                "degradedSuccessRate": self.degraded_success_rate,
                "failingSuccessRate": self.failing_success_rate,
                "degradedP95Seconds": self.degraded_p95_seconds,
                "failingP95Seconds": self.failing_p95_seconds}


def defaults(config) -> dict:
    """The catalog-wide policy, from the settings."""
    return {"windowSeconds": config["HEALTH_WINDOW_SECONDS"],
            "minGenerations": config["HEALTH_MIN_GENERATIONS"],
            "degradedSuccessRate": config["HEALTH_DEGRADED_SUCCESS_RATE"],
            "failingSuccessRate": config["HEALTH_FAILING_SUCCESS_RATE"],
            "degradedP95Seconds": config["HEALTH_DEGRADED_P95_SECONDS"],
            "failingP95Seconds": config["HEALTH_FAILING_P95_SECONDS"]}


def effective(config, override: dict | None) -> Policy:
    merged = {**defaults(config), **(override or {})}
    return Policy(int(merged["windowSeconds"]), int(merged["minGenerations"]),
                  float(merged["degradedSuccessRate"]), float(merged["failingSuccessRate"]),
                  _seconds(merged["degradedP95Seconds"]), _seconds(merged["failingP95Seconds"]))


def _seconds(value) -> float | None:
    return None if value is None else float(value)
