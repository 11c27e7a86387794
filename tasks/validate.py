"""Validation of a phase: which checks run on each table (identities, spot checks and
processors are defined here; thresholds come from config/thresholds.yaml), the task that runs
them, the report, and where results are kept (`nba_ops.validation_results`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from blocks.warehouse import TableSpec, Warehouse
from blocks.settings import get_settings
from engine.checks import (
    CHECK_NAMES,
    CheckResult,
    Identity,
    Scope,
    SpotCheckSpec,
    run_checks,
)
from engine.checks import VALIDATION_RESULTS
from engine.ledger import RUN_LEDGER
from tasks.phases import DATA_TABLES, PHASE_TABLES, TABLE_PROCESSORS, TABLES, processable
from engine.thresholds import TableThresholds, load_thresholds


_RANGE = "game_date BETWEEN @start AND @end"
_FINDINGS = f"""SELECT game_id, game_date, provider_game_id, entity_name, rule, field, difference, message,
                       severity, status
                FROM nba_ops.discrepancies WHERE {_RANGE}"""

# ---------------------------------------------------------------- identities per table
# Each selects the rows it checks; `violation` says when a row breaks the rule.

IDENTITIES: dict[str, dict[str, Identity]] = {
    "schedule": {
        "winner_matches_score": Identity(
            "the winner has the higher final score",
            f"SELECT game_id, game_date, home_pts, away_pts, winner FROM nba_raw.schedule WHERE {_RANGE}",
            "home_pts = away_pts OR winner <> CASE WHEN home_pts > away_pts THEN 'H' ELSE 'A' END",
        ),
        "teams_differ": Identity(
            "a game has two different teams",
            f"SELECT game_id, game_date, home_team_id, away_team_id FROM nba_raw.schedule WHERE {_RANGE}",
            "home_team_id = away_team_id",
        ),
    },
    "player_boxscores": {
        "points_from_makes": Identity(
            "PTS = 2·FGM + FG3M + FTM",
            f"SELECT game_id, player_id, game_date, pts, fgm, fg3m, ftm FROM nba_raw.player_boxscores WHERE {_RANGE}",
            "pts <> 2 * fgm + fg3m + ftm",
        ),
        "makes_within_attempts": Identity(
            "makes ≤ attempts and 3PA ≤ FGA",
            f"SELECT game_id, player_id, game_date, fgm, fga, fg3m, fg3a, ftm, fta "
            f"FROM nba_raw.player_boxscores WHERE {_RANGE}",
            "fgm > fga OR fg3m > fg3a OR ftm > fta OR fg3a > fga",
        ),
        "rebounds_add_up": Identity(
            "REB = OREB + DREB",
            f"SELECT game_id, player_id, game_date, reb, oreb, dreb FROM nba_raw.player_boxscores WHERE {_RANGE}",
            "reb <> oreb + dreb",
        ),
        "points_sum_to_final_score": Identity(
            "Σ player points of a team = its final score in the schedule",
            f"""SELECT b.game_id, b.team_id, min(b.game_date) AS game_date, sum(b.pts) AS player_points,
                       max(CASE WHEN b.team_id = s.home_team_id THEN s.home_pts
                                WHEN b.team_id = s.away_team_id THEN s.away_pts END) AS final_score
                FROM nba_raw.player_boxscores b LEFT JOIN nba_raw.schedule s ON s.game_id = b.game_id
                WHERE b.{_RANGE} GROUP BY b.game_id, b.team_id""",
            "final_score IS NULL OR player_points <> final_score",
        ),
        # The game's length: 48 minutes + 5 per overtime (NUM_OT from the schedule).
        "minutes_within_game_length": Identity(
            "a player's minutes ≤ the game's length, 48 + 5 per overtime",
            f"""SELECT b.game_id, b.player_id, b.game_date, b.min, s.num_ot, 48 + 5 * s.num_ot AS game_minutes
                FROM nba_raw.player_boxscores b JOIN nba_raw.schedule s ON s.game_id = b.game_id
                WHERE b.{_RANGE}""",
            "min > game_minutes",
        ),
        # Five on the floor for the whole game; MIN is rounded to whole minutes, so each
        # player's figure is off by at most ½ (2023-24: −3 … +4 minutes a team).
        "team_minutes_fill_the_game": Identity(
            "a team's minutes = 5 × the game's length (240 + 25 per overtime), ± ½ per player (rounding)",
            f"""SELECT b.game_id, b.team_id, min(b.game_date) AS game_date, count(*) AS players,
                       sum(b.min) AS team_minutes, max(240 + 25 * s.num_ot) AS game_minutes
                FROM nba_raw.player_boxscores b JOIN nba_raw.schedule s ON s.game_id = b.game_id
                WHERE b.{_RANGE} GROUP BY b.game_id, b.team_id""",
            "2 * abs(team_minutes - game_minutes) > players",
        ),
    },
    "shots": {
        "every_game_has_shots": Identity(
            "every scheduled game has a shot chart",
            f"""SELECT s.game_id, s.game_date, count(x.game_id) AS shots
                FROM nba_raw.schedule s LEFT JOIN nba_raw.shots x
                  ON x.game_id = s.game_id AND x.game_date = s.game_date
                WHERE s.{_RANGE} GROUP BY s.game_id, s.game_date""",
            "shots = 0",
        ),
        "shots_by_box_players": Identity(
            "every shot's (game, player) is in the box score",
            f"""SELECT x.game_id, x.player_id, x.game_date, b.player_id AS box_player_id
                FROM nba_raw.shots x LEFT JOIN nba_raw.player_boxscores b
                  ON b.game_id = x.game_id AND b.player_id = x.player_id
                WHERE x.{_RANGE}""",
            "box_player_id IS NULL",
        ),
        "period_within_the_game": Identity(
            "a shot's period is one of the game's (4 + its overtimes), its clock within the period "
            "(12:00; overtime 5:00)",
            f"""SELECT x.game_id, x.player_id, x.game_date, x.period, x.mins_left, x.secs_left, s.num_ot
                FROM nba_raw.shots x JOIN nba_raw.schedule s ON s.game_id = x.game_id
                WHERE x.{_RANGE}""",
            "period > 4 + num_ot OR mins_left * 60 + secs_left > CASE WHEN period <= 4 THEN 720 ELSE 300 END",
        ),
        "shots_match_box_fga": Identity(
            "shot-chart attempts = box-score FGA per player and game",
            f"""SELECT b.game_id, b.player_id, b.game_date, b.fga AS box_fga,
                       COALESCE(x.shots, 0) AS shot_chart_fga
                FROM nba_raw.player_boxscores b LEFT JOIN (
                    SELECT game_id, player_id, count(*) AS shots FROM nba_raw.shots
                    WHERE {_RANGE} GROUP BY game_id, player_id) x
                  ON x.game_id = b.game_id AND x.player_id = b.player_id
                WHERE b.{_RANGE}""",
            "box_fga <> shot_chart_fga",
            # NBA.com's box score and shot chart disagree on a few player-games (3 in 2023-24,
            # see data/nba README); analytics flags those rows instead of trusting the zones.
            severity="warning",
            max_rate=0.01,
        ),
    },
    "espn_team_boxscores": {
        "rebounds_add_up": Identity(
            "ESPN's total rebounds = offensive + defensive (player rebounds only, per its README)",
            f"""SELECT game_id, team_id, game_date, offensive_rebounds, defensive_rebounds, total_rebounds
                FROM nba_raw.espn_team_boxscores WHERE {_RANGE}""",
            "total_rebounds <> offensive_rebounds + defensive_rebounds",
        ),
    },
    "provider_games": {
        "every_scheduled_game_mapped": Identity(
            "every NBA.com game of the schedule has its row in provider_games (mapped, or a finding)",
            f"""SELECT s.game_id, s.game_date, count(p.game_id) AS rows_mapped
                FROM nba_raw.schedule s LEFT JOIN nba_ops.provider_games p
                  ON p.game_id = s.game_id AND p.game_date = s.game_date
                WHERE s.{_RANGE} GROUP BY s.game_id, s.game_date""",
            "rows_mapped = 0",
        ),
    },
    "discrepancies": {
        # The gate of the reconcile phase: a critical finding stops the run before analytics.
        "no_open_critical_findings": Identity(
            "no open critical reconciliation finding (points, overtime, a game or team missing from a feed)",
            _FINDINGS,
            "status = 'open' AND severity = 'critical'",
        ),
        "no_open_warnings": Identity(
            "no open warning finding (a counting stat off between two feeds)",
            _FINDINGS,
            "status = 'open' AND severity = 'warning'",
            severity="warning",
        ),
    },
    "game_quality": {
        "every_scheduled_game_scored": Identity(
            "every NBA.com game of the schedule has a quality score",
            f"""SELECT s.game_id, s.game_date, q.quality_score
                FROM nba_raw.schedule s LEFT JOIN nba_ops.game_quality q
                  ON q.game_id = s.game_id AND q.game_date = s.game_date
                WHERE s.{_RANGE}""",
            "quality_score IS NULL",
        ),
    },
    "team_offense_game_summary": {
        "points_equal_final_score": Identity(
            "team points = its final score in the schedule",
            f"""SELECT t.game_id, t.team_id, t.game_date, t.points,
                       CASE WHEN t.home THEN s.home_pts ELSE s.away_pts END AS final_score
                FROM nba_analytics.team_offense_game_summary t
                LEFT JOIN nba_raw.schedule s ON s.game_id = t.game_id WHERE t.{_RANGE}""",
            "final_score IS NULL OR points <> final_score",
        ),
        "points_equal_player_sum": Identity(
            "team points = Σ its players' points in player_game_summary",
            f"""SELECT t.game_id, t.team_id, t.game_date, t.points, p.player_points
                FROM nba_analytics.team_offense_game_summary t LEFT JOIN (
                    SELECT game_id, team_id, sum(pts) AS player_points
                    FROM nba_analytics.player_game_summary WHERE {_RANGE} GROUP BY game_id, team_id) p
                  ON p.game_id = t.game_id AND p.team_id = t.team_id
                WHERE t.{_RANGE}""",
            "player_points IS NULL OR points <> player_points",
        ),
        "zone_attempts_equal_fga": Identity(
            "paint + mid-range + three attempts = FGA",
            f"""SELECT game_id, team_id, game_date, fga,
                       paint_attempts + mid_range_attempts + three_attempts AS zone_attempts
                FROM nba_analytics.team_offense_game_summary WHERE {_RANGE}""",
            "zone_attempts <> fga",
            severity="warning",  # the same NBA.com box/shot-chart disagreements as raw shots
            max_rate=0.01,
        ),
        "win_matches_margin": Identity(
            "win ⇔ margin > 0",
            f"SELECT game_id, team_id, game_date, win, margin FROM nba_analytics.team_offense_game_summary WHERE {_RANGE}",
            "win <> (margin > 0)",
        ),
    },
    "team_defense_game_summary": {
        "points_allowed_equal_opponent_points": Identity(
            "points allowed = the opponent's team points",
            f"""SELECT d.game_id, d.team_id, d.game_date, d.points_allowed, o.points AS opponent_points
                FROM nba_analytics.team_defense_game_summary d
                LEFT JOIN nba_analytics.team_offense_game_summary o
                  ON o.game_id = d.game_id AND o.team_id = d.opponent_team_id
                WHERE d.{_RANGE}""",
            "opponent_points IS NULL OR points_allowed <> opponent_points",
        ),
    },
    "player_game_summary": {
        "every_box_row_summarized": Identity(
            "every raw box-score row has a player_game_summary row",
            f"""SELECT b.game_id, b.player_id, b.game_date, p.player_id AS summary_player_id
                FROM nba_raw.player_boxscores b LEFT JOIN nba_analytics.player_game_summary p
                  ON p.game_id = b.game_id AND p.player_id = b.player_id
                WHERE b.{_RANGE}""",
            "summary_player_id IS NULL",
        ),
        "points_from_makes": Identity(
            "PTS = 2·FGM + FG3M + FTM",
            f"SELECT game_id, player_id, game_date, pts, fgm, fg3m, ftm FROM nba_analytics.player_game_summary WHERE {_RANGE}",
            "pts <> 2 * fgm + fg3m + ftm",
        ),
        "usage_null_only_without_minutes": Identity(
            "usage_rate is NULL exactly when the player had 0 minutes",
            f"SELECT game_id, player_id, game_date, minutes, usage_rate FROM nba_analytics.player_game_summary WHERE {_RANGE}",
            "(usage_rate IS NULL) <> (minutes = 0)",
        ),
        "efg_null_only_without_attempts": Identity(
            "efg_pct is NULL exactly when the player took no field-goal attempt",
            f"SELECT game_id, player_id, game_date, fga, efg_pct FROM nba_analytics.player_game_summary WHERE {_RANGE}",
            "(efg_pct IS NULL) <> (fga = 0)",
        ),
        "zones_sum_to_shot_chart": Identity(
            "paint + mid-range + three attempts = the player's shot-chart attempts",
            f"""SELECT game_id, player_id, game_date, shot_chart_fga,
                       paint_attempts + mid_range_attempts + three_attempts AS zone_attempts
                FROM nba_analytics.player_game_summary WHERE {_RANGE}""",
            "zone_attempts <> shot_chart_fga",
        ),
        "complete_zones_flag": Identity(
            "has_complete_shot_zones ⇔ the shot chart agrees with the box score",
            f"""SELECT game_id, player_id, game_date, has_complete_shot_zones, shot_chart_fga, fga,
                       three_attempts, fg3a
                FROM nba_analytics.player_game_summary WHERE {_RANGE}""",
            "has_complete_shot_zones <> (shot_chart_fga = fga AND three_attempts = fg3a)",
        ),
    },
    "player_game_context": {
        "every_summary_row_has_context": Identity(
            "every player_game_summary row has a context row",
            f"""SELECT p.game_id, p.player_id, p.game_date, c.player_id AS context_player_id
                FROM nba_analytics.player_game_summary p LEFT JOIN nba_analytics.player_game_context c
                  ON c.game_id = p.game_id AND c.player_id = p.player_id
                WHERE p.{_RANGE}""",
            "context_player_id IS NULL",
        ),
        "first_game_has_no_rest": Identity(
            "days_rest is NULL exactly on a player's first game of the season",
            f"SELECT game_id, player_id, game_date, games_played_season, days_rest "
            f"FROM nba_analytics.player_game_context WHERE {_RANGE}",
            "(games_played_season = 0) <> (days_rest IS NULL)",
        ),
    },
    "team_defense_zone_analysis": {
        "every_team_playing_has_a_row": Identity(
            "every team playing on a precomputed date has its zone defence row",
            f"""SELECT o.game_id, o.team_id, o.game_date, z.team_id AS zone_team_id
                FROM nba_analytics.team_offense_game_summary o
                LEFT JOIN nba_precompute.team_defense_zone_analysis z
                  ON z.game_date = o.game_date AND z.team_id = o.team_id
                WHERE o.{_RANGE} AND o.game_date IN (
                    SELECT game_date FROM nba_precompute.ml_feature_store WHERE {_RANGE})""",
            "zone_team_id IS NULL",
        ),
    },
    "ml_feature_store": {
        "every_player_has_features": Identity(
            "every player in a precomputed date's box score has a feature row",
            f"""SELECT p.game_id, p.player_id, p.game_date, f.player_id AS feature_player_id
                FROM nba_analytics.player_game_summary p
                LEFT JOIN nba_precompute.ml_feature_store f
                  ON f.game_date = p.game_date AND f.player_id = p.player_id
                WHERE p.{_RANGE} AND p.game_date IN (
                    SELECT game_date FROM nba_precompute.ml_feature_store WHERE {_RANGE})""",
            "feature_player_id IS NULL",
        ),
        "target_is_the_box_score": Identity(
            "actual_points = the player's points in that game",
            f"""SELECT f.game_id, f.player_id, f.game_date, f.actual_points, p.pts
                FROM nba_precompute.ml_feature_store f
                LEFT JOIN nba_analytics.player_game_summary p
                  ON p.game_id = f.game_id AND p.player_id = f.player_id
                WHERE f.{_RANGE}""",
            "pts IS NULL OR actual_points <> pts",
        ),
    },
}


# ---------------------------------------------------------------- spot checks


def _box_from_source(warehouse: Warehouse, top: pd.DataFrame, source: Any) -> pd.DataFrame:
    """The source's own rows for the top scorers' dates, fetched again."""
    frames = []
    for d in sorted(pd.to_datetime(top.game_date).dt.date.unique()):
        rows = source.fetch("player_box", d)
        frames.append(pd.DataFrame({
            "game_id": rows["GAME_ID"].astype(str), "player_id": pd.to_numeric(rows["PLAYER_ID"]),
            "pts": pd.to_numeric(rows["PTS"]), "min": pd.to_numeric(rows["MIN"]),
            "fga": pd.to_numeric(rows["FGA"]),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _box_from_raw(warehouse: Warehouse, top: pd.DataFrame, source: Any) -> pd.DataFrame:
    dates = pd.to_datetime(top.game_date).dt.date
    return warehouse.query(
        "SELECT game_id, player_id, pts, min AS minutes, fga, fgm, fg3m, ftm FROM nba_raw.player_boxscores "
        "WHERE game_date BETWEEN @first AND @last AND pts >= @least",
        {"first": dates.min(), "last": dates.max(), "least": int(top.pts.min())},
    )


SPOT_CHECKS: dict[str, SpotCheckSpec] = {
    "player_boxscores": SpotCheckSpec(
        columns=("game_id", "player_id", "game_date", "player_name", "pts", "min", "fga"),
        compared=("pts", "min", "fga"),
        reference_name="the source, fetched again",
        reference=_box_from_source,
    ),
    "player_game_summary": SpotCheckSpec(
        columns=("game_id", "player_id", "game_date", "player_name", "pts", "minutes", "fga", "fgm", "fg3m", "ftm"),
        compared=("pts", "minutes", "fga", "fgm", "fg3m", "ftm"),
        reference_name="nba_raw.player_boxscores",
        reference=_box_from_raw,
    ),
}


# ---------------------------------------------------------------- thresholds and scope


def all_thresholds() -> dict[str, TableThresholds]:
    """Every table's thresholds: the YAML file with settings overrides applied, checked
    against the tables, columns and identities (a table without a section gets defaults)."""
    settings = get_settings()
    tables = {spec.name: spec for specs in PHASE_TABLES.values() for spec in specs}
    loaded = load_thresholds(
        settings.thresholds_file,
        settings.thresholds,
        columns={name: set(spec.column_names) for name, spec in tables.items()},
        identities={name: set(ids) for name, ids in IDENTITIES.items()},
        check_kinds=set(CHECK_NAMES),
    )
    return {name: loaded.get(name, TableThresholds()) for name in tables}


def validation_scopes(phase: str, start: date, end: date, dates: list[date] | None = None) -> list[Scope]:
    """What to check: [start, end] against the phase's processable dates (the source's game
    dates; precompute: not a season's first 14 days); or, for
    a sample run's scattered `dates`, each date on its own (a range between two sample dates
    would count the dates in between as missing)."""
    game_dates = processable(phase, get_settings().source_block().game_dates(start, end))
    if dates is None:
        return [Scope(start, end, tuple(game_dates))]
    return [Scope(d, d, (d,)) for d in game_dates if d in set(dates)]


def ensure_validation_tables() -> None:
    """The tables checks read and write exist (empty on a fresh home: coverage then fails
    with its message, not with a missing-table error)."""
    get_settings().warehouse_block().ensure_tables([*DATA_TABLES, RUN_LEDGER, VALIDATION_RESULTS])


def check_table(
    warehouse: Warehouse, table: str, scope: Scope, thresholds: TableThresholds, source: Any | None = None
) -> list[CheckResult]:
    """Every configured check of one table, with its processors, identities and spot check
    (no Prefect: the benchmark and tests call it on a warehouse of their choosing)."""
    return run_checks(
        warehouse, TABLES[table], scope, thresholds,
        processors=TABLE_PROCESSORS.get(table, ()),
        identities=IDENTITIES.get(table),
        spot=SPOT_CHECKS.get(table),
        source=source,
    )  # fmt: skip


@task(name="validate_table", task_run_name="validate-{table}", cache_policy=NO_CACHE)
def validate_table(table: str, scope: Scope, thresholds: TableThresholds) -> list[CheckResult]:
    """Every configured check of one table (validation always runs: never cached). The spot
    check's fetches from the source are retried each on its own (the source's policy), not
    the whole task: at a 20 % fault rate a task of k fetches would pass only 0.8^k of times."""
    settings = get_settings()
    return check_table(settings.warehouse_block(), table, scope, thresholds, settings.source_block())


# ---------------------------------------------------------------- the report


@dataclass
class ValidationReport:
    phase: str
    start: date
    end: date
    dates_checked: int
    results: list[CheckResult]
    sample_dates: list[date] | None = None
    validation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    checked_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def blocking(self) -> list[CheckResult]:
        return [r for r in self.results if r.blocking]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    @property
    def status(self) -> str:
        return "failed" if self.blocking else "warnings" if self.warnings else "passed"

    @property
    def exit_code(self) -> int:
        """The CLI's: 0 passed, 1 a critical check failed, 2 warnings only."""
        return {"passed": 0, "failed": 1, "warnings": 2}[self.status]

    def blocking_dates(self) -> list[date]:
        """The dates named by the failed critical checks (their scope or offending rows)."""
        found = set()
        for r in self.blocking:
            for row in r.sample:
                if row.get("game_date") is not None:
                    found.add(pd.Timestamp(row["game_date"]).date())
            if ".." not in r.scope and r.scope:
                found.add(date.fromisoformat(r.scope))
        return sorted(found)

    def summary(self) -> str:
        failed = "; ".join(f"{r.table} {r.name} [{r.scope}]: {r.message}" for r in self.blocking)
        counts = f"{sum(r.passed for r in self.results)} of {len(self.results)} checks passed"
        return f"{self.phase} validation {self.status} ({counts})" + (f": {failed}" if failed else "")

    def failures(self) -> list[dict[str, Any]]:
        """The failed checks, one row each (the table artifact)."""
        return [
            {
                "severity": r.severity, "table": r.table, "check": r.name, "dates": r.scope,
                "observed": r.observed,
                "threshold": r.threshold, "message": r.message,
                "offending (first)": ", ".join(f"{k}={v}" for k, v in r.sample[0].items()) if r.sample else "",
            }
            for r in sorted(self.results, key=lambda r: ("critical", "warning", "info").index(r.severity))
            if not r.passed
        ]  # fmt: skip

    def to_markdown(self) -> str:
        icon = {"passed": "✅", "warnings": "⚠️", "failed": "❌"}[self.status]
        lines = [
            f"# {icon} {self.phase} validation: {self.status}",
            "",
            f"{self.start} → {self.end}, {self.dates_checked} processable dates, "
            f"{len(self.results)} checks: {sum(r.passed for r in self.results)} passed, "
            f"{len(self.blocking)} critical failures, {len(self.warnings)} warnings.",
            "",
            "| table | check | dates | severity | result | observed | threshold | detail |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            mark = "pass" if r.passed else "**FAIL**"
            lines.append(
                f"| {r.table} | {r.name} | {r.scope} | {r.severity} | {mark} | {_fmt(r.observed)} "
                f"| {_fmt(r.threshold)} | {r.message} |"
            )
        for r in self.results:
            if not r.passed and r.sample:
                lines += ["", f"**{r.table} {r.name}**, offending rows (first {len(r.sample)}):", ""]
                cols = list(r.sample[0])
                lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                lines += ["| " + " | ".join(str(row.get(c)) for c in cols) + " |" for row in r.sample]
        return "\n".join(lines)

    def to_text(self) -> str:
        """The report for a terminal."""
        lines = [self.summary(), ""]
        for r in self.results:
            mark = "ok  " if r.passed else {"critical": "FAIL", "warning": "WARN", "info": "info"}[r.severity]
            where = f" [{r.scope}]" if self.sample_dates else ""
            lines.append(f"  {mark} {r.table:<42} {r.name:<38} {r.message}{where}")
            if not r.passed:
                for row in r.sample[:3]:
                    lines.append("         " + ", ".join(f"{k}={v}" for k, v in row.items()))
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:g}" if isinstance(v, float) else str(v)


class ValidationFailed(RuntimeError):
    """A critical check failed; the report travels with the exception."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report

    def __reduce__(self):  # results are pickled: rebuild from the report, not the message
        return (ValidationFailed, (self.report,))


def report_of(state: Any) -> ValidationReport | None:
    """The report of a finished validation subflow, passed or failed; None when it crashed
    before reporting (the gate then stays shut)."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, ValidationFailed):
        return value.report
    return value if isinstance(value, ValidationReport) else None


def record_validation(report: ValidationReport) -> int:
    """One `nba_ops.validation_results` row per check."""
    warehouse = get_settings().warehouse_block()
    warehouse.ensure_tables([VALIDATION_RESULTS])
    ctx = FlowRunContext.get()
    rows = [
        {
            "validation_id": report.validation_id,
            "flow_run_id": str(ctx.flow_run.id) if ctx and ctx.flow_run else None,
            "phase": report.phase,
            "start_date": report.start,
            "end_date": report.end,
            "dates_checked": report.dates_checked,
            "table_id": r.table,
            "check_kind": r.kind,
            "check_name": r.name,
            "severity": r.severity,
            "passed": r.passed,
            "observed": r.observed,
            "threshold": r.threshold,
            "message": r.message,
            "sample": r.as_row()["sample"],
            "scope": r.scope,
            "checked_at": report.checked_at,
        }
        for r in report.results
    ]
    return warehouse.append(VALIDATION_RESULTS, pd.DataFrame(rows))
