"""Validation thresholds: `config/thresholds.yaml`, one section per table (and the ML gate's,
`models`), parsed by a real YAML parser into typed models. Settings override any value
(`HOOPFLOW_THRESHOLDS__<table>__<key>`).
Everything is checked when loaded: an unknown table, key, column or identity is an error
(the system this replaces read its YAML with a parser that ignored sections)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Severity = Literal["critical", "warning", "info"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    """An inclusive range; a missing end is open (one end at least)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min is None and self.max is None:
            raise ValueError("a band needs a min or a max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self

    def text(self) -> str:
        """`[0, 100]`, `[0, ∞)`, `(−∞, 100]`: the limit a message states."""
        low = "(−∞" if self.min is None else f"[{self.min:g}"
        high = "∞)" if self.max is None else f"{self.max:g}]"
        return f"{low}, {high}"


class MonthlyVolume(_Strict):
    # A month's rows per scheduled game may differ from the median month's by this fraction.
    max_relative_deviation: float = Field(gt=0)
    # Months with fewer games (a season's first days) are too noisy to compare.
    min_games: int = Field(default=20, ge=1)


class Regression(_Strict):
    """Each `window_days` window of the range against the `baseline_days` before it."""

    columns: tuple[str, ...]
    window_days: int = Field(default=14, ge=1)
    baseline_days: int = Field(default=28, ge=1)
    # Relative drop of the non-NULL share: (baseline − window) / baseline.
    max_coverage_drop: float = Field(default=0.10, ge=0)
    # |window mean − baseline mean| in baseline standard deviations.
    max_mean_shift_sd: float = Field(default=0.5, gt=0)
    # Windows with fewer rows (either side) are not compared.
    min_rows: int = Field(default=50, ge=1)


class SpotCheck(_Strict):
    """The top scorers' rows compared with the table they were made from."""

    top_n: int = Field(default=10, ge=1, le=100)


class TableThresholds(_Strict):
    # Share of the processable dates that must have rows.
    coverage_min: float = Field(default=1.0, ge=0, le=1)
    # Share of (processor, date) pairs whose last attempt succeeded.
    completeness_min: float = Field(default=1.0, ge=0, le=1)
    # Longest run of calendar days without rows between two dates that have rows.
    max_gap_days: int | None = Field(default=None, ge=1)
    # Rows per scheduled game (exact), or per team and game (a band of possible counts).
    rows_per_game: int | None = Field(default=None, ge=1)
    rows_per_team_game: Band | None = None
    # Rows per team and game seen on real seasons: outside is possible but unusual (a warning).
    usual_rows_per_team_game: Band | None = None
    max_duplicate_keys: int = Field(default=0, ge=0)
    # Column → largest allowed share of NULLs.
    null_rates: dict[str, float] = Field(default_factory=dict)
    # Column → possible values; anything outside is impossible (the rules of the game).
    ranges: dict[str, Band] = Field(default_factory=dict)
    # Column → usual values: outside is possible but unusual (a warning: a 73-point game).
    usual_ranges: dict[str, Band] = Field(default_factory=dict)
    # Identity (defined in engine/checks.py) → largest allowed share of violating rows.
    identities: dict[str, float] = Field(default_factory=dict)
    monthly_volume: MonthlyVolume | None = None
    # No rows may exist in the first N days of a season (precompute tables).
    bootstrap_days: int | None = Field(default=None, ge=1)
    regression: Regression | None = None
    spot_check: SpotCheck | None = None
    # Check kind or name (identity, rows_per_team_game, unusual_…) → severity, overriding the default.
    severity: dict[str, Severity] = Field(default_factory=dict)


# The ML gate's scorer tiers (tasks/ml.py TIERS): the player's season average before the date.
Tier = Literal["25_plus", "15_to_24", "5_to_14", "under_5"]


class ModelGate(_Strict):
    """The gate in front of `nba_predictions.models` (section `models`): a trained model is
    registered only when, on its test dates, it beats the best baseline and no scorer tier
    is systematically off."""

    # Test MAE must be at most the best baseline's MAE minus this (points).
    min_mae_margin: float = Field(ge=0)
    # Tier → largest allowed |mean(predicted − actual)| on the test rows (points).
    max_tier_bias: dict[Tier, float] = Field(default_factory=dict)
    # A tier with fewer test rows is reported but its bias is not judged (too noisy).
    min_tier_rows: int = Field(default=100, ge=1)
    # Fewer rows than these (after the quality rule): refused, too few to learn from or judge by.
    min_train_rows: int = Field(default=1000, ge=1)
    min_test_rows: int = Field(default=500, ge=1)


# Sections that configure a gate rather than a table's checks, keyed by the table the gate
# protects; each has its own model.
GATE_SECTIONS: dict[str, type[_Strict]] = {"models": ModelGate}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ThresholdsError(ValueError):
    pass


def load_thresholds(
    path: Path,
    overrides: Mapping[str, Any],
    columns: Mapping[str, set[str]],
    identities: Mapping[str, set[str]],
    check_kinds: set[str],
) -> dict[str, TableThresholds]:
    """Parse `path`, apply `overrides`, and check every name against the tables
    (`columns`: table → its columns; `identities`: table → identity names)."""
    merged, where = _read(path, overrides)
    out: dict[str, TableThresholds] = {}
    for table, section in merged.items():
        if table in GATE_SECTIONS:
            _parse_section(GATE_SECTIONS[table], table, section, where)  # checked here too
            continue
        if table not in columns:
            raise ThresholdsError(f"{where}: unknown table section {table!r}; known: {sorted(columns)}")
        t = _parse_section(TableThresholds, table, section, where)
        named = {
            "null_rates": set(t.null_rates),
            "ranges": set(t.ranges),
            "usual_ranges": set(t.usual_ranges),
            "regression.columns": set(t.regression.columns if t.regression else ()),
        }
        for key, names in named.items():
            unknown = sorted(names - columns[table])
            if unknown:
                raise ThresholdsError(f"{where}: {table}.{key}: {unknown} not columns of {table}")
        unknown = sorted(set(t.identities) - identities.get(table, set()))
        if unknown:
            raise ThresholdsError(
                f"{where}: {table}.identities: unknown {unknown}; "
                f"known: {sorted(identities.get(table, ()))}"
            )
        unknown = sorted(set(t.severity) - check_kinds - identities.get(table, set()))
        if unknown:
            raise ThresholdsError(f"{where}: {table}.severity: unknown checks {unknown}")
        out[table] = t
    return out


def _read(path: Path, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The file's sections with the overrides merged in, and how to name it in errors."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ThresholdsError(f"{path}: thresholds file not found") from None
    except yaml.YAMLError as exc:
        raise ThresholdsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ThresholdsError(f"{path}: expected one section per table, got {type(raw).__name__}")
    where = f"{path} (with settings overrides)" if overrides else str(path)
    return deep_merge(raw, overrides), where


def _parse_section(model: type[_Strict], table: str, section: Any, where: str) -> Any:
    try:
        return model.model_validate(section or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{table}.{'.'.join(map(str, e['loc']))}: "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        )
        raise ThresholdsError(f"{where}: {problems}") from None


def load_gate(path: Path, overrides: Mapping[str, Any], section: str = "models") -> Any:
    """One gate section of `path` with the settings overrides applied (the file must have it:
    a gate without limits would let anything through)."""
    merged, where = _read(path, overrides)
    if section not in merged:
        raise ThresholdsError(f"{where}: no {section!r} section (the gate needs its limits)")
    return _parse_section(GATE_SECTIONS[section], section, merged[section], where)
