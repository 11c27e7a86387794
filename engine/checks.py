"""Validation checks: plain functions over a Warehouse (portable SQL, so they run on DuckDB
and BigQuery alike), each returning a typed CheckResult. No Prefect here: a test calls them
on a DuckDB file. Which checks run on a table, and against which thresholds, is decided by
its section of config/thresholds.yaml (see engine/thresholds.py); DESIGN §6 lists the kinds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from datetime import date, timedelta
from typing import Any

import pandas as pd

from blocks.warehouse import TableSpec, Warehouse
from engine.ledger import last_attempts
from engine.thresholds import Band, Severity, TableThresholds

# One row per check per validation run (nba_ops.validation_results).
VALIDATION_RESULTS = TableSpec(
    dataset="nba_ops",
    name="validation_results",
    columns=(
        ("validation_id", "STRING"), ("flow_run_id", "STRING"), ("phase", "STRING"),
        ("start_date", "DATE"), ("end_date", "DATE"), ("dates_checked", "INT64"),
        ("table_id", "STRING"), ("check_kind", "STRING"), ("check_name", "STRING"),
        ("severity", "STRING"), ("passed", "BOOL"), ("observed", "FLOAT64"),
        ("threshold", "FLOAT64"), ("message", "STRING"), ("sample", "STRING"), ("scope", "STRING"),
        ("checked_at", "TIMESTAMP"),
    ),
    partition_by=None,
    cluster_by=("phase",),
    required=("validation_id", "phase", "table_id", "check_name", "severity", "passed", "checked_at"),
    description="One row per check per validation run.",
)  # fmt: skip

SAMPLE_ROWS = 10

# Every check kind and its severity unless a table's `severity:` section says otherwise.
DEFAULT_SEVERITY: dict[str, Severity] = {
    "coverage": "critical",
    "completeness": "critical",
    "row_count": "critical",
    "duplicate_keys": "critical",
    "null_rate": "critical",
    "impossible_values": "critical",
    "identity": "critical",
    "bootstrap_exclusion": "critical",
    "spot_check": "critical",
    "date_gaps": "warning",
    "monthly_volume": "warning",
    "feature_regression": "warning",
}

# Checks named apart from their kind, with their own default severity: the usual bands (a
# value outside them is possible, only unusual) warn where the possible ones block.
NAMED_SEVERITY: dict[str, Severity] = {
    "rows_per_team_game": "critical",  # kind row_count
    "unusual_rows_per_team_game": "warning",  # kind row_count
    "unusual_values": "warning",  # kind impossible_values
}
# Every name a table's `severity:` section may set (besides its identities).
CHECK_NAMES: frozenset[str] = frozenset({*DEFAULT_SEVERITY, *NAMED_SEVERITY})


@dataclass(frozen=True)
class Scope:
    """What is validated: the rows of [start, end], against the processable dates in it."""

    start: date
    end: date
    dates: tuple[date, ...]  # the processable dates in [start, end]

    @property
    def label(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}..{self.end}"


@dataclass(frozen=True)
class CheckResult:
    kind: str  # a key of DEFAULT_SEVERITY
    name: str  # the kind, or the identity's name
    table: str  # dataset.table
    severity: Severity
    passed: bool
    observed: float | None
    threshold: float | None
    message: str
    sample: list[dict[str, Any]] = field(default_factory=list)  # offending rows
    scope: str = ""  # the dates checked: "2023-10-24" or "2023-10-24..2024-04-14"

    @property
    def blocking(self) -> bool:
        return self.severity == "critical" and not self.passed

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["sample"] = json.dumps(self.sample, default=str)
        return row


def _records(df: pd.DataFrame, limit: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """Offending rows as JSON-friendly dicts (NULL → None, numpy scalars → Python)."""
    return [{k: _plain(v) for k, v in rec.items()} for rec in df.head(limit).to_dict("records")]


def _plain(v: Any) -> Any:
    if _isnull(v):
        return None
    if isinstance(v, pd.Timestamp):  # DATE columns come back as midnight timestamps
        return v.date() if v == v.normalize() and v.tzinfo is None else v.isoformat()
    return v.item() if hasattr(v, "item") else v


def _isnull(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _dates(values: pd.Series) -> list[date]:
    return sorted(pd.to_datetime(values).dt.date.unique())


def _range(scope: Scope) -> dict[str, date]:
    return {"start": scope.start, "end": scope.end}


class Checker:
    """The checks of one table over one scope, with its thresholds."""

    def __init__(self, warehouse: Warehouse, spec: TableSpec, scope: Scope, thresholds: TableThresholds):
        self.wh, self.spec, self.scope, self.t = warehouse, spec, scope, thresholds

    def result(self, kind: str, passed: bool, observed: float | None, threshold: float | None,
               message: str, sample: pd.DataFrame | list | None = None, name: str | None = None,
               default: Severity | None = None) -> CheckResult:  # fmt: skip
        name = name or kind
        default = default or NAMED_SEVERITY.get(name)
        severity = self.t.severity.get(name) or self.t.severity.get(kind) or default or DEFAULT_SEVERITY[kind]
        if isinstance(sample, pd.DataFrame):
            sample = _records(sample)
        return CheckResult(kind, name, self.spec.id, severity, bool(passed), observed, threshold,
                           message, list(sample or [])[:SAMPLE_ROWS], self.scope.label)  # fmt: skip

    @cached_property
    def present_dates(self) -> list[date]:
        """Dates with rows (coverage, gaps and bootstrap all read it: one query)."""
        df = self.wh.query(
            f"SELECT DISTINCT game_date FROM {self.spec.id} WHERE game_date BETWEEN @start AND @end",
            _range(self.scope),
        )
        return _dates(df.game_date)

    # ---------------------------------------------------------------- coverage and gaps

    def coverage(self) -> CheckResult:
        present = set(self.present_dates)
        expected = self.scope.dates
        missing = [d for d in expected if d not in present]
        share = 1.0 if not expected else 1 - len(missing) / len(expected)
        return self.result(
            "coverage", share >= self.t.coverage_min, share, self.t.coverage_min,
            f"{len(expected) - len(missing)} of {len(expected)} processable dates have rows"
            + (f"; missing {', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}" if missing else ""),
            [{"game_date": d} for d in missing],
        )  # fmt: skip

    def date_gaps(self) -> CheckResult:
        limit = self.t.max_gap_days
        present = self.present_dates
        gaps = [(a, b, (b - a).days - 1) for a, b in zip(present, present[1:])]
        long = [g for g in gaps if g[2] > limit]
        longest = max((g[2] for g in gaps), default=0)
        return self.result(
            "date_gaps", not long, longest, limit,
            f"longest run without rows: {longest} days" + (f" ({len(long)} runs over {limit})" if long else ""),
            [{"last_date_before": a, "next_date": b, "days_without_rows": n} for a, b, n in long],
        )  # fmt: skip

    def bootstrap_exclusion(self) -> CheckResult:
        """No rows in the first `bootstrap_days` days of any season (season starts come from
        the schedule: the first game date of each season)."""
        days = self.t.bootstrap_days
        starts = self.wh.query("SELECT season, min(game_date) AS first_date FROM nba_raw.schedule GROUP BY season")
        firsts = sorted(pd.to_datetime(starts.first_date).dt.date)
        bad = []
        for d in self.present_dates:
            season_start = max((f for f in firsts if f <= d), default=None)
            if season_start is not None and d < season_start + timedelta(days=days):
                bad.append({"game_date": d, "season_start": season_start})
        return self.result(
            "bootstrap_exclusion", not bad, len(bad), 0,
            f"{len(bad)} dates with rows inside a season's first {days} days", bad,
        )  # fmt: skip

    # ---------------------------------------------------------------- row counts

    def row_count(self) -> list[CheckResult]:
        out = []
        scoped = set(self.scope.dates)
        if self.t.rows_per_game is not None:
            k = self.t.rows_per_game
            per_game = self.wh.query(
                f"SELECT s.game_id, s.game_date, count(t.game_id) AS row_count FROM nba_raw.schedule s "
                f"LEFT JOIN {self.spec.id} t ON t.game_id = s.game_id AND t.game_date = s.game_date "
                "WHERE s.game_date BETWEEN @start AND @end GROUP BY s.game_id, s.game_date",
                _range(self.scope),
            )
            per_game = per_game[pd.to_datetime(per_game.game_date).dt.date.isin(scoped)]
            bad = per_game[per_game.row_count != k].sort_values(["game_date", "game_id"])
            out.append(self.result(
                "row_count", bad.empty, len(bad), 0,
                f"{len(bad)} of {len(per_game)} scheduled games without exactly {k} rows", bad,
            ))  # fmt: skip
        possible, usual = self.t.rows_per_team_game, self.t.usual_rows_per_team_game
        if possible is None and usual is None:
            return out
        per_team = self.wh.query(
            f"SELECT game_id, game_date, team_id, count(*) AS row_count FROM {self.spec.id} "
            "WHERE game_date BETWEEN @start AND @end GROUP BY game_id, game_date, team_id",
            _range(self.scope),
        )
        per_team = per_team[pd.to_datetime(per_team.game_date).dt.date.isin(scoped)]
        for name, band, label in (("rows_per_team_game", possible, ""),
                                  ("unusual_rows_per_team_game", usual, "the usual ")):  # fmt: skip
            if band is None:
                continue
            limit = label + band.text()
            low = per_team.row_count < (band.min if band.min is not None else -math.inf)
            high = per_team.row_count > (band.max if band.max is not None else math.inf)
            bad = per_team[low | high].sort_values(["game_date", "game_id"])
            out.append(self.result(
                "row_count", bad.empty, len(bad), 0,
                f"{len(bad)} of {len(per_team)} team-games with rows outside {limit}"
                + (" (possible, but unusual)" if label and not bad.empty else ""),
                bad, name=name,
            ))  # fmt: skip
        return out

    def monthly_volume(self) -> CheckResult:
        cfg = self.t.monthly_volume
        month = "EXTRACT(YEAR FROM game_date) AS year, EXTRACT(MONTH FROM game_date) AS month"
        rows = self.wh.query(
            f"SELECT {month}, count(*) AS row_count FROM {self.spec.id} "
            "WHERE game_date BETWEEN @start AND @end GROUP BY 1, 2", _range(self.scope),
        )  # fmt: skip
        games = self.wh.query(
            f"SELECT {month}, count(*) AS games FROM nba_raw.schedule "
            "WHERE game_date BETWEEN @start AND @end GROUP BY 1, 2", _range(self.scope),
        )  # fmt: skip
        m = games.merge(rows, on=["year", "month"], how="left").fillna({"row_count": 0})
        m = m[m.games >= cfg.min_games].sort_values(["year", "month"])
        if len(m) < 2:
            return self.result("monthly_volume", True, None, cfg.max_relative_deviation,
                               f"{len(m)} months with ≥ {cfg.min_games} games: nothing to compare")
        m["rows_per_game"] = m.row_count / m.games
        # Each month against the median of the others (with two months, a median including
        # the month itself would halve its deviation).
        per_game = list(m.rows_per_game)
        m["others_median"] = [float(pd.Series(per_game[:i] + per_game[i + 1:]).median()) for i in range(len(m))]
        m["deviation"] = [abs(v / ref - 1) if ref else math.inf for v, ref in zip(m.rows_per_game, m.others_median, strict=True)]
        bad = m[m.deviation > cfg.max_relative_deviation]
        worst = float(m.deviation.max())
        return self.result(
            "monthly_volume", bad.empty, round(worst, 4), cfg.max_relative_deviation,
            f"rows per game by month vs the other months' median: largest deviation {worst:.1%}",
            bad,
        )  # fmt: skip

    # ---------------------------------------------------------------- keys, NULLs, values

    def duplicate_keys(self) -> CheckResult:
        key = ", ".join(self.spec.key)
        dups = self.wh.query(
            f"SELECT {key}, count(*) AS copies FROM {self.spec.id} WHERE game_date BETWEEN @start AND @end "
            f"GROUP BY {key} HAVING count(*) > 1 ORDER BY {key}", _range(self.scope),
        )  # fmt: skip
        return self.result(
            "duplicate_keys", len(dups) <= self.t.max_duplicate_keys, len(dups), self.t.max_duplicate_keys,
            f"{len(dups)} ({key}) keys appear more than once", dups,
        )  # fmt: skip

    def null_rate(self) -> CheckResult:
        cols = list(self.t.null_rates)
        counts = self.wh.query(
            "SELECT count(*) AS n_rows, " + ", ".join(f"count({c}) AS {c}" for c in cols)
            + f" FROM {self.spec.id} WHERE game_date BETWEEN @start AND @end", _range(self.scope),
        ).iloc[0]  # fmt: skip
        n = int(counts.n_rows)
        rates = {c: (1 - int(counts[c]) / n) if n else 0.0 for c in cols}
        over = [{"column": c, "null_rate": round(r, 6), "max_null_rate": self.t.null_rates[c]}
                for c, r in rates.items() if r > self.t.null_rates[c]]  # fmt: skip
        worst = max(cols, key=lambda c: rates[c] - self.t.null_rates[c])
        return self.result(
            "null_rate", not over, round(rates[worst], 6), self.t.null_rates[worst],
            f"{len(over)} of {len(cols)} critical columns over their NULL limit"
            + (f" (worst {worst}: {rates[worst]:.2%})" if over else f" over {n:,} rows"),
            over,
        )  # fmt: skip

    def impossible_values(self) -> CheckResult:
        """Values outside their possible range (`ranges`): the rules of the game rule them out."""
        return self._outside_bands("impossible_values", self.t.ranges, "possible")

    def unusual_values(self) -> CheckResult:
        """Values outside their usual range (`usual_ranges`): possible, but worth a look."""
        return self._outside_bands("unusual_values", self.t.usual_ranges, "usual")

    def _outside_bands(self, name: str, bands: dict[str, Band], what: str) -> CheckResult:
        conditions = {}
        for col, band in bands.items():
            parts = ([f"{col} < {band.min!r}"] if band.min is not None else []) + (
                [f"{col} > {band.max!r}"] if band.max is not None else [])  # fmt: skip
            conditions[col] = " OR ".join(parts)
        counts = self.wh.query(
            "SELECT " + ", ".join(f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {col}" for col, cond in conditions.items())
            + f" FROM {self.spec.id} WHERE game_date BETWEEN @start AND @end", _range(self.scope),
        ).iloc[0]  # fmt: skip
        bad = {c: int(v) for c, v in counts.items() if not _isnull(v) and int(v)}
        sample = pd.DataFrame()
        if bad:
            cols = [*dict.fromkeys([*self.spec.key, "game_date", *bad])]
            where = " OR ".join(f"({conditions[c]})" for c in bad)
            sample = self.wh.query(
                f"SELECT {', '.join(cols)} FROM {self.spec.id} WHERE game_date BETWEEN @start AND @end "
                f"AND ({where}) ORDER BY game_date LIMIT {SAMPLE_ROWS}", _range(self.scope),
            )  # fmt: skip
        total = sum(bad.values())
        detail = ", ".join(f"{c} {n} outside {bands[c].text()}" for c, n in bad.items())
        return self.result(
            "impossible_values", total == 0, total, 0,
            f"{total} values outside their {what} range"
            + (f" ({detail})" if bad else f" in {len(conditions)} columns")
            + (", possible but unusual" if bad and what == "usual" else ""),
            sample, name=name,
        )  # fmt: skip

    # ---------------------------------------------------------------- identities

    def identities(self, identities: dict[str, Identity]) -> list[CheckResult]:
        out = []
        for name, ident in identities.items():
            allowed = self.t.identities.get(name, ident.max_rate)
            rel = ident.sql.strip()
            counts = self.wh.query(
                f"SELECT count(*) AS checked, sum(CASE WHEN {ident.violation} THEN 1 ELSE 0 END) AS violations "
                f"FROM ({rel}) AS r", _range(self.scope),
            ).iloc[0]  # fmt: skip
            checked = int(counts.checked)
            violations = 0 if _isnull(counts.violations) else int(counts.violations)
            sample = pd.DataFrame()
            if violations:
                sample = self.wh.query(
                    f"SELECT * FROM ({rel}) AS r WHERE {ident.violation} LIMIT {SAMPLE_ROWS}", _range(self.scope)
                )
            rate = violations / checked if checked else 0.0
            out.append(self.result(
                "identity", rate <= allowed, round(rate, 6), allowed,
                f"{ident.description}: {violations} of {checked:,} rows violate it", sample,
                name=name, default=ident.severity,
            ))  # fmt: skip
        return out

    # ---------------------------------------------------------------- completeness

    def completeness(self, processors: Sequence[str]) -> CheckResult:
        attempts = last_attempts(self.wh, self.scope.start, self.scope.end)
        last = {(p, d): (s, e) for p, d, s, e in zip(attempts.processor, attempts.game_date, attempts.status, attempts.error, strict=True)}
        bad = []
        for d in self.scope.dates:
            for p in processors:
                status, error = last.get((p, d), ("never ran", None))
                if status != "succeeded":
                    bad.append({"processor": p, "game_date": d, "last_status": status, "error": error})
        pairs = len(self.scope.dates) * len(processors)
        share = 1.0 if not pairs else 1 - len(bad) / pairs
        return self.result(
            "completeness", share >= self.t.completeness_min, share, self.t.completeness_min,
            f"{pairs - len(bad)} of {pairs} processor × date runs last succeeded ({', '.join(processors)})",
            bad,
        )  # fmt: skip

    # ---------------------------------------------------------------- regression

    def feature_regression(self) -> CheckResult:
        cfg = self.t.regression
        begin = self.scope.start - timedelta(days=cfg.window_days + cfg.baseline_days)
        aggs = ", ".join(
            # `* 1.0`: a portable cast to floating point (the sums of squares of counts grow large)
            f"count({c}) AS {c}__n, sum({c} * 1.0) AS {c}__s, sum({c} * 1.0 * {c}) AS {c}__ss"
            for c in cfg.columns
        )
        daily = self.wh.query(
            f"SELECT game_date, count(*) AS n_rows, {aggs} FROM {self.spec.id} "
            "WHERE game_date BETWEEN @start AND @end GROUP BY game_date",
            {"start": begin, "end": self.scope.end},
        )
        daily["game_date"] = pd.to_datetime(daily.game_date).dt.date
        daily = daily.fillna(0)
        findings, compared = [], 0
        worst_shift = 0.0
        window_end = self.scope.end
        while window_end >= self.scope.start:
            w_start = window_end - timedelta(days=cfg.window_days - 1)
            b_start = w_start - timedelta(days=cfg.baseline_days)
            win = daily[(daily.game_date >= w_start) & (daily.game_date <= window_end)]
            base = daily[(daily.game_date >= b_start) & (daily.game_date < w_start)]
            if win.n_rows.sum() >= cfg.min_rows and base.n_rows.sum() >= cfg.min_rows:
                compared += 1
                for c in cfg.columns:
                    f = _window_shift(win, base, c)
                    worst_shift = max(worst_shift, f["mean_shift_sd"])
                    if f["coverage_drop"] > cfg.max_coverage_drop or f["mean_shift_sd"] > cfg.max_mean_shift_sd:
                        findings.append({"window": f"{w_start}..{window_end}", "baseline": f"{b_start}..{w_start - timedelta(days=1)}", "column": c, **f})
            window_end = w_start - timedelta(days=1)
        if not compared:
            return self.result("feature_regression", True, None, cfg.max_mean_shift_sd,
                               f"no {cfg.window_days}-day window with a {cfg.baseline_days}-day baseline of ≥ {cfg.min_rows} rows")
        return self.result(
            "feature_regression", not findings, round(worst_shift, 4), cfg.max_mean_shift_sd,
            f"{compared} windows × {len(cfg.columns)} columns vs their baselines: {len(findings)} regressions "
            f"(largest mean shift {worst_shift:.2f} sd)",
            findings,
        )  # fmt: skip

    # ---------------------------------------------------------------- spot check

    def spot_check(self, spot: SpotCheckSpec, source: Any | None) -> CheckResult:
        n = self.t.spot_check.top_n
        top = self.wh.query(
            f"SELECT {', '.join(spot.columns)} FROM {self.spec.id} WHERE game_date BETWEEN @start AND @end "
            f"ORDER BY {spot.order_by} DESC, game_id, player_id LIMIT {int(n)}", _range(self.scope),
        )  # fmt: skip
        if top.empty:
            return self.result("spot_check", True, 0, 0, "no rows to spot-check")
        reference = spot.reference(self.wh, top, source)
        merged = top.merge(reference, on=["game_id", "player_id"], how="left", suffixes=("", "_reference"))
        bad = pd.Series(False, index=merged.index)
        for col in spot.compared:
            ref = merged[f"{col}_reference"]
            bad |= ref.isna() | (merged[col].astype("float64") != ref.astype("float64"))
        offending = merged[bad]
        return self.result(
            "spot_check", offending.empty, len(offending), 0,
            f"{len(top) - len(offending)} of {len(top)} top scorers match {spot.reference_name} "
            f"({', '.join(spot.compared)})", offending,
        )  # fmt: skip


def _window_shift(win: pd.DataFrame, base: pd.DataFrame, col: str) -> dict[str, float]:
    def stats(df: pd.DataFrame) -> tuple[float, float, float]:
        rows, n = df.n_rows.sum(), df[f"{col}__n"].sum()
        s, ss = df[f"{col}__s"].sum(), df[f"{col}__ss"].sum()
        mean = s / n if n else 0.0
        var = max(ss / n - mean * mean, 0.0) if n else 0.0
        return (n / rows if rows else 0.0), mean, math.sqrt(var)

    cov_w, mean_w, sd_w = stats(win)
    cov_b, mean_b, sd_b = stats(base)
    drop = (cov_b - cov_w) / cov_b if cov_b else 0.0
    if sd_b > 0:
        shift = abs(mean_w - mean_b) / sd_b
    else:
        shift = 0.0 if mean_w == mean_b else math.inf
    if sd_w == 0 and sd_b > 0:  # a feature gone constant (the old all-zeros feature)
        shift = max(shift, math.inf)
    figures = {
        "coverage_window": cov_w, "coverage_baseline": cov_b, "coverage_drop": drop,
        "mean_window": mean_w, "mean_baseline": mean_b, "sd_baseline": sd_b,
        "mean_shift_sd": shift if math.isfinite(shift) else 1e9,
    }  # fmt: skip
    return {k: round(float(v), 4) for k, v in figures.items()}


# ---------------------------------------------------------------- definitions per table


@dataclass(frozen=True)
class Identity:
    """A rule every row of `sql` must satisfy. `sql` selects the rows checked (with
    @start/@end); `violation` is a boolean SQL expression over its columns."""

    description: str
    sql: str
    violation: str
    severity: Severity = "critical"
    max_rate: float = 0.0  # default allowed share of violating rows


@dataclass(frozen=True)
class SpotCheckSpec:
    columns: tuple[str, ...]  # selected from the table (game_id, player_id, game_date first)
    compared: tuple[str, ...]  # compared with the reference's columns of the same name
    reference_name: str
    reference: Callable[[Warehouse, pd.DataFrame, Any], pd.DataFrame]
    order_by: str = "pts"


def run_checks(
    warehouse: Warehouse,
    spec: TableSpec,
    scope: Scope,
    thresholds: TableThresholds,
    *,
    processors: Sequence[str] = (),
    identities: dict[str, Identity] | None = None,
    spot: SpotCheckSpec | None = None,
    source: Any | None = None,
) -> list[CheckResult]:
    """Every check the table's thresholds configure, in a fixed order."""
    c, t = Checker(warehouse, spec, scope, thresholds), thresholds
    results = [c.coverage()]
    if processors:
        results.append(c.completeness(processors))
    results += c.row_count()
    if spec.key:
        results.append(c.duplicate_keys())
    if t.null_rates:
        results.append(c.null_rate())
    if t.ranges:
        results.append(c.impossible_values())
    if t.usual_ranges:
        results.append(c.unusual_values())
    if identities:
        results += c.identities(identities)
    if t.bootstrap_days:
        results.append(c.bootstrap_exclusion())
    if t.max_gap_days:
        results.append(c.date_gaps())
    if t.monthly_volume:
        results.append(c.monthly_volume())
    if t.regression:
        results.append(c.feature_regression())
    if t.spot_check and spot is not None:
        results.append(c.spot_check(spot, source))
    return results
