"""Validation checks on a real warehouse: the bundled season's first four weeks, built once
(raw + analytics, the task functions without Prefect) and copied for each test. On the real
data every check passes; then one seeded defect per check kind, each caught by its check.

The defects are written by hand as SQL against the copy; what each check must report
(dates, rows) is known from the defect itself, never from the code under test."""

from __future__ import annotations

import shutil
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from blocks.warehouse_duckdb import DuckDBWarehouse
from blocks.settings import get_settings
from engine.checks import CheckResult, Scope
from engine.ledger import RUN_LEDGER
from tasks.phases import TABLE_PHASE, TABLES, processable
from engine.thresholds import TableThresholds
from tasks.validate import all_thresholds, check_table
from tests.conftest import BUILT_END, BUILT_START, SEASON_DIR



@pytest.fixture
def wh(built_home: Path, tmp_path: Path) -> DuckDBWarehouse:
    """A private copy of the built warehouse (defects stay in this test)."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(built_home / "warehouse.duckdb", copy)
    return DuckDBWarehouse(path=str(copy))


@pytest.fixture(scope="module")
def scope(season_csv) -> Scope:
    dates = sorted(
        {date.fromisoformat(d) for d in season_csv["schedule"].GAME_DATE
         if str(BUILT_START) <= d <= str(BUILT_END)}
    )  # fmt: skip
    return Scope(BUILT_START, BUILT_END, tuple(dates))


@pytest.fixture(scope="module")
def thresholds(built_home) -> dict[str, TableThresholds]:
    return all_thresholds()


def check(wh, table: str, scope: Scope, thresholds, **overrides) -> dict[str, CheckResult]:
    t = thresholds[table].model_copy(update=overrides) if overrides else thresholds[table]
    # precompute: no bootstrap days
    scope = Scope(scope.start, scope.end, tuple(processable(TABLE_PHASE[table], list(scope.dates))))
    results = check_table(wh, table, scope, t, get_settings().source_block())
    return {r.name: r for r in results}


def failed(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, r in results.items() if not r.passed}


def test_the_real_season_passes_every_check(wh, scope, thresholds, built_home):
    run = {name: check(wh, name, scope, thresholds) for name in TABLES}
    problems = [f"{r.table} {r.name}: {r.message}" for res in run.values() for r in res.values() if not r.passed]
    # Only the feeds' real disagreements of these four weeks, warnings (docs/design/reconciliation.md:
    # 0022300078's five, 0022300089's and 0022300091's one each), tested against pandas in
    # tests/flows/test_reconcile.py.
    assert problems == ["nba_ops.discrepancies no_open_warnings: no open warning finding (a counting stat off "
                        "between two feeds): 7 of 7 rows violate it"]  # fmt: skip
    assert run["discrepancies"]["no_open_warnings"].severity == "warning"
    kinds = {r.kind for res in run.values() for r in res.values()}
    # Every check kind ran on some table.
    assert kinds == {
        "coverage", "completeness", "row_count", "duplicate_keys", "null_rate", "impossible_values",
        "identity", "date_gaps", "monthly_volume", "feature_regression", "spot_check", "bootstrap_exclusion",
    }  # fmt: skip
    regression = run["player_game_summary"]["feature_regression"]
    assert regression.observed is not None and "0 regressions" in regression.message


# ---------------------------------------------------------------- one defect per check kind


def test_coverage_names_the_missing_date(wh, scope, thresholds):
    wh.query("DELETE FROM nba_analytics.player_game_summary WHERE game_date = DATE '2023-11-08'")
    r = check(wh, "player_game_summary", scope, thresholds)["coverage"]
    assert not r.passed and r.severity == "critical"
    assert r.sample == [{"game_date": date(2023, 11, 8)}]
    assert r.observed == pytest.approx(1 - 1 / len(scope.dates))


def test_completeness_sees_a_processor_whose_last_attempt_failed(wh, scope, thresholds):
    now = datetime.now(timezone.utc)
    wh.append(RUN_LEDGER, pd.DataFrame([{
        "run_id": str(uuid.uuid4()), "processor": "player_game_summary", "game_date": date(2023, 11, 8),
        "status": "failed", "rows_written": 0, "seconds": 0.1, "input_fingerprint": "x", "code_version": "y",
        "flow_run_id": None, "task_run_id": None, "attempt": 1, "error": "boom", "detail": "{}",
        "started_at": now, "finished_at": now,
    }]))  # fmt: skip
    r = check(wh, "player_game_summary", scope, thresholds)["completeness"]
    assert not r.passed
    assert r.sample == [{"processor": "player_game_summary", "game_date": date(2023, 11, 8),
                         "last_status": "failed", "error": "boom"}]  # fmt: skip
    # The other tables' processors are not affected.
    assert check(wh, "team_offense_game_summary", scope, thresholds)["completeness"].passed


def test_row_count_sees_a_game_with_one_team_row(wh, scope, thresholds):
    wh.query(
        "DELETE FROM nba_analytics.team_offense_game_summary WHERE game_id = '0022300180' AND home"
    )
    r = check(wh, "team_offense_game_summary", scope, thresholds)["row_count"]
    assert not r.passed and r.observed == 1
    assert r.sample[0]["game_id"] == "0022300180" and r.sample[0]["row_count"] == 1


def test_row_count_band_sees_a_team_game_with_four_players(wh, scope, thresholds):
    # Four players cannot play a game: five are on the floor.
    wh.query("""
        DELETE FROM nba_raw.player_boxscores WHERE rowid IN (
            SELECT rowid FROM nba_raw.player_boxscores
            WHERE game_id = '0022300180' AND home_away = 'H' ORDER BY min DESC OFFSET 4)""")
    results = check(wh, "player_boxscores", scope, thresholds)
    r = results["rows_per_team_game"]
    assert not r.passed and r.blocking and r.observed == 1
    assert (r.sample[0]["game_id"], r.sample[0]["row_count"]) == ("0022300180", 4)
    assert "1 of " in r.message and "team-games with rows outside [5, 18]" in r.message
    # Unusual too (under the 8 calibrated on 2023-24), reported as a warning.
    usual = results["unusual_rows_per_team_game"]
    assert not usual.passed and usual.severity == "warning"
    assert "outside the usual [8, ∞) (possible, but unusual)" in usual.message


def test_duplicate_keys_names_the_key(wh, scope, thresholds):
    wh.query("""
        INSERT INTO nba_analytics.player_game_summary
        SELECT * FROM nba_analytics.player_game_summary WHERE game_id = '0022300180' AND player_id = (
            SELECT min(player_id) FROM nba_analytics.player_game_summary WHERE game_id = '0022300180')""")
    r = check(wh, "player_game_summary", scope, thresholds)["duplicate_keys"]
    assert not r.passed and r.observed == 1
    assert r.sample[0]["game_id"] == "0022300180" and r.sample[0]["copies"] == 2


def test_null_rate_sees_a_null_in_a_critical_column(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.team_offense_game_summary SET pace = NULL
        WHERE game_id = '0022300180' AND home""")
    r = check(wh, "team_offense_game_summary", scope, thresholds)["null_rate"]
    assert not r.passed
    assert r.sample[0]["column"] == "pace" and r.sample[0]["null_rate"] > 0


def test_impossible_values_names_the_row_and_column(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.player_game_summary SET usage_rate = 140
        WHERE game_id = '0022300180' AND player_id = (
            SELECT min(player_id) FROM nba_analytics.player_game_summary WHERE game_id = '0022300180')""")
    r = check(wh, "player_game_summary", scope, thresholds)["impossible_values"]
    assert not r.passed and r.observed == 1
    assert r.sample[0]["usage_rate"] == 140 and r.sample[0]["game_id"] == "0022300180"
    assert r.message == "1 values outside their possible range (usage_rate 1 outside [0, 100])"


def test_a_cross_field_identity_sees_one_bad_row(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_raw.player_boxscores SET reb = reb + 1
        WHERE rowid = (SELECT min(rowid) FROM nba_raw.player_boxscores WHERE game_id = '0022300180')""")
    results = check(wh, "player_boxscores", scope, thresholds)
    assert failed(results) == {"rebounds_add_up"}
    assert results["rebounds_add_up"].sample[0]["game_id"] == "0022300180"


def test_a_cross_table_identity_sees_points_that_do_not_add_up(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.team_defense_game_summary SET points_allowed = points_allowed + 2
        WHERE game_id = '0022300180' AND home""")
    results = check(wh, "team_defense_game_summary", scope, thresholds)
    assert failed(results) == {"points_allowed_equal_opponent_points"}
    bad = results["points_allowed_equal_opponent_points"].sample[0]
    assert bad["points_allowed"] == bad["opponent_points"] + 2


def test_bootstrap_exclusion_sees_rows_in_a_seasons_first_days(wh, scope, thresholds):
    # No precompute table yet: player_game_context has rows from opening night, so held to a
    # 14-day bootstrap rule it must fail on exactly those dates, and pass once they are gone.
    first_days = [d for d in scope.dates if d < date(2023, 11, 7)]
    r = check(wh, "player_game_context", scope, thresholds, bootstrap_days=14)["bootstrap_exclusion"]
    assert not r.passed and r.observed == len(first_days)
    assert [row["game_date"] for row in r.sample] == first_days[:10]
    wh.query("DELETE FROM nba_analytics.player_game_context WHERE game_date < DATE '2023-11-07'")
    r = check(wh, "player_game_context", scope, thresholds, bootstrap_days=14)["bootstrap_exclusion"]
    assert r.passed


def test_date_gaps_sees_a_lost_week(wh, scope, thresholds):
    wh.query("DELETE FROM nba_raw.schedule WHERE game_date BETWEEN DATE '2023-11-06' AND DATE '2023-11-14'")
    r = check(wh, "schedule", scope, thresholds)["date_gaps"]
    assert not r.passed and r.severity == "warning"
    assert r.sample == [{"last_date_before": date(2023, 11, 5), "next_date": date(2023, 11, 15),
                         "days_without_rows": 9}]  # fmt: skip


def test_monthly_volume_sees_a_month_that_lost_its_bench(wh, scope, thresholds):
    wh.query("DELETE FROM nba_analytics.player_game_summary WHERE game_date >= DATE '2023-11-01' AND minutes < 12")
    r = check(wh, "player_game_summary", scope, thresholds)["monthly_volume"]
    assert not r.passed and r.severity == "warning"
    # With two months, each is compared with the other: both are flagged, November low.
    november = next(row for row in r.sample if (row["year"], row["month"]) == (2023, 11))
    assert november["rows_per_game"] < 0.85 * november["others_median"]


def test_feature_regression_sees_a_feature_gone_to_zero(wh, scope, thresholds):
    # The old system's feature that was all zeros for months.
    wh.query("UPDATE nba_analytics.player_game_summary SET usage_rate = 0 WHERE game_date >= DATE '2023-11-07'")
    r = check(wh, "player_game_summary", scope, thresholds)["feature_regression"]
    assert not r.passed and r.severity == "warning"
    assert {row["column"] for row in r.sample} == {"usage_rate"}


def test_feature_regression_sees_a_coverage_drop(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.team_offense_game_summary SET ts_pct = NULL
        WHERE game_date >= DATE '2023-11-07' AND NOT home""")
    r = check(wh, "team_offense_game_summary", scope, thresholds)["feature_regression"]
    assert not r.passed
    assert {row["column"] for row in r.sample} == {"ts_pct"}
    assert min(row["coverage_drop"] for row in r.sample) > 0.4  # half the rows lost the value


def _top_scorer(season_csv) -> pd.Series:
    box = season_csv["player_box"]
    box = box[box.GAME_DATE.between(str(BUILT_START), str(BUILT_END))]
    return box.sort_values("PTS", ascending=False).iloc[0]


def test_spot_check_compares_top_scorers_with_the_raw_box_score(wh, scope, thresholds, season_csv):
    top = _top_scorer(season_csv)
    wh.query(
        "UPDATE nba_analytics.player_game_summary SET minutes = minutes - 3 WHERE game_id = @g AND player_id = @p",
        {"g": top.GAME_ID, "p": int(top.PLAYER_ID)},
    )
    r = check(wh, "player_game_summary", scope, thresholds)["spot_check"]
    assert not r.passed and r.observed == 1
    assert (r.sample[0]["player_id"], r.sample[0]["minutes"]) == (top.PLAYER_ID, top.MIN - 3)


def test_spot_check_compares_raw_top_scorers_with_the_source(wh, scope, thresholds, season_csv):
    top = _top_scorer(season_csv)
    wh.query(
        "UPDATE nba_raw.player_boxscores SET fga = fga + 1 WHERE game_id = @g AND player_id = @p",
        {"g": top.GAME_ID, "p": int(top.PLAYER_ID)},
    )
    r = check(wh, "player_boxscores", scope, thresholds)["spot_check"]
    assert not r.passed
    assert (r.sample[0]["fga"], r.sample[0]["fga_reference"]) == (top.FGA + 1, top.FGA)


def test_severity_can_be_overridden_per_check(wh, scope, thresholds):
    wh.query("DELETE FROM nba_raw.schedule WHERE game_date BETWEEN DATE '2023-11-06' AND DATE '2023-11-14'")
    r = check(wh, "schedule", scope, thresholds, severity={"date_gaps": "critical"})["date_gaps"]
    assert r.blocking


def test_bootstrap_exclusion_sees_a_feature_row_written_too_early(wh, scope, thresholds):
    wh.query("""
        INSERT INTO nba_precompute.ml_feature_store
        SELECT * REPLACE (DATE '2023-10-30' AS game_date) FROM nba_precompute.ml_feature_store
        WHERE game_date = DATE '2023-11-08' LIMIT 1""")
    r = check(wh, "ml_feature_store", scope, thresholds)["bootstrap_exclusion"]
    assert not r.passed and r.severity == "critical"
    assert r.sample == [{"game_date": date(2023, 10, 30), "season_start": date(2023, 10, 24)}]


# ---------------------------------------------------------------- what the rules rule out
# Game 0022300180 (2023-11-12, PHI 137–126 IND, regulation): ten 76ers played 240 minutes.
GAME = "0022300180"
HARRIS, BATUM, HOUSE, REED, KORKMAZ = 202699, 201587, 1627863, 1630194, 1627788  # none a top-10 scorer


def blocking(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, r in results.items() if r.blocking}


def test_a_49_minute_regulation_game_is_impossible(wh, scope, thresholds):
    # Harris 36 → 49 minutes, Batum 33 → 20: the team's 240 minutes stay, one player's 49
    # exceed the 48 of a game without overtime.
    wh.query(f"UPDATE nba_raw.player_boxscores SET min = 49 WHERE game_id = '{GAME}' AND player_id = {HARRIS}")
    wh.query(f"UPDATE nba_raw.player_boxscores SET min = 20 WHERE game_id = '{GAME}' AND player_id = {BATUM}")
    results = check(wh, "player_boxscores", scope, thresholds)
    assert blocking(results) == {"minutes_within_game_length"}
    r = results["minutes_within_game_length"]
    assert r.observed > 0 and [(row["player_id"], row["min"], row["game_minutes"]) for row in r.sample] == [(HARRIS, 49, 48)]


def test_a_teams_minutes_must_fill_the_game(wh, scope, thresholds):
    # Reed 15 → 5: the team's minutes fall 10 short of 240, more than ten players' rounding (± 5).
    wh.query(f"UPDATE nba_raw.player_boxscores SET min = 5 WHERE game_id = '{GAME}' AND player_id = {REED}")
    results = check(wh, "player_boxscores", scope, thresholds)
    assert blocking(results) == {"team_minutes_fill_the_game"}
    row = results["team_minutes_fill_the_game"].sample[0]
    assert (row["game_id"], row["players"], row["team_minutes"], row["game_minutes"]) == (GAME, 10, 230, 240)


def test_more_makes_than_attempts_is_impossible(wh, scope, thresholds):
    wh.query(f"UPDATE nba_raw.player_boxscores SET fgm = fga + 1 WHERE game_id = '{GAME}' AND player_id = {KORKMAZ}")
    results = check(wh, "player_boxscores", scope, thresholds)
    assert "makes_within_attempts" in blocking(results)
    assert results["makes_within_attempts"].sample[0]["player_id"] == KORKMAZ


def test_points_that_do_not_sum_to_the_final_score_are_a_contradiction(wh, scope, thresholds):
    # House's row is self-consistent (one more made two), but the team's points no longer
    # equal the schedule's final score.
    wh.query(f"UPDATE nba_raw.player_boxscores SET pts = pts + 2, fgm = fgm + 1, fga = fga + 1 "
             f"WHERE game_id = '{GAME}' AND player_id = {HOUSE}")  # fmt: skip
    results = check(wh, "player_boxscores", scope, thresholds)
    assert blocking(results) == {"points_sum_to_final_score"}
    row = results["points_sum_to_final_score"].sample[0]
    assert (row["game_id"], row["player_points"], row["final_score"]) == (GAME, 139, 137)


def test_a_shot_outside_the_games_periods_is_impossible(wh, scope, thresholds):
    # Period 5 of a game without overtime; then 7:00 left in an overtime (which lasts 5:00).
    wh.query(f"UPDATE nba_raw.shots SET period = 5, mins_left = 2 WHERE rowid = (SELECT min(rowid) FROM nba_raw.shots WHERE game_id = '{GAME}')")
    results = check(wh, "shots", scope, thresholds)
    assert blocking(results) == {"period_within_the_game"}
    row = results["period_within_the_game"].sample[0]
    assert (row["game_id"], row["period"], row["num_ot"]) == (GAME, 5, 0)
    wh.query(f"UPDATE nba_raw.shots SET period = 4 WHERE game_id = '{GAME}' AND period = 5")
    assert check(wh, "shots", scope, thresholds)["period_within_the_game"].passed
    overtime = wh.query("SELECT min(game_id) AS g FROM nba_raw.schedule WHERE num_ot = 1").g[0]
    wh.query(f"UPDATE nba_raw.shots SET mins_left = 7 WHERE rowid = (SELECT min(rowid) FROM nba_raw.shots WHERE game_id = '{overtime}' AND period = 5)")
    row = check(wh, "shots", scope, thresholds)["period_within_the_game"].sample[0]
    assert (row["game_id"], row["period"], row["mins_left"]) == (overtime, 5, 7)


# ---------------------------------------------------------------- what the rules allow
# Rule-legal extremes 2023-24 never saw, made from copies of its real rows (the source CSVs of
# a few dates, edited) and run through raw, analytics and precompute like any season: no
# critical check may fail on them; the unusual ones are reported as warnings.
EXTREME_DATES = ("2023-10-24", "2023-10-25", "2023-10-26", "2023-10-27", "2023-11-06", "2023-11-08")  # 9 days without games
COUNTS = ["PTS", "FGM", "FGA", "FG3M", "FG3A", "FTM", "FTA", "OREB", "DREB", "REB", "AST", "STL", "BLK", "TOV"]


def _pcts(box: pd.DataFrame, rows) -> None:
    for made, att, pct in (("FGM", "FGA", "FG_PCT"), ("FG3M", "FG3A", "FG3_PCT"), ("FTM", "FTA", "FT_PCT")):
        box.loc[rows, pct] = (box.loc[rows, made] / box.loc[rows, att].where(box.loc[rows, att] > 0)).round(3)


def _few_players(box: pd.DataFrame, shots: pd.DataFrame, game: str, team: int, keep: int) -> tuple[pd.DataFrame, int]:
    """Only the team's `keep` players with most minutes appeared, 240 / keep minutes each; the
    others' stats and shots go to the first of them (the final score stays)."""
    rows = box[(box.GAME_ID == game) & (box.TEAM_ID == team)].sort_values("MIN", ascending=False)
    kept, gone = rows.index[:keep], rows.index[keep:]
    star = kept[0]
    box.loc[star, COUNTS] += box.loc[gone, COUNTS].sum()
    _pcts(box, [star])
    box.loc[kept, "MIN"] = 240 // keep
    moved = (shots.GAME_ID == game) & shots.PLAYER_ID.isin(box.loc[gone, "PLAYER_ID"])
    shots.loc[moved, "PLAYER_ID"] = box.loc[star, "PLAYER_ID"]
    return box.drop(gone), int(box.loc[star, "PLAYER_ID"])


def _extreme_season(folder: Path) -> dict:
    """The edited CSVs in `folder`; returns what was made (the expected facts)."""
    read = {n: pd.read_csv(SEASON_DIR / f"{n}.csv.gz", dtype={"GAME_ID": str}) for n in ("schedule", "player_box", "shots")}
    sched, box, shots = (read[n][read[n].GAME_DATE.isin(EXTREME_DATES)].copy() for n in ("schedule", "player_box", "shots"))
    regulation = sched[sched.NUM_OT == 0]
    facts = {}

    # A 6-overtime game (the record): 78 minutes a game, 390 a team; overtime shots in periods 5–10.
    g = regulation[regulation.GAME_DATE == "2023-10-25"].GAME_ID.iloc[0]
    sched.loc[sched.GAME_ID == g, "NUM_OT"] = 6
    for team in box[box.GAME_ID == g].TEAM_ID.unique():
        rows = box[(box.GAME_ID == g) & (box.TEAM_ID == team)].MIN.sort_values(ascending=False)
        rest = (rows.iloc[1:] * (390 - 78) / rows.iloc[1:].sum()).round().astype(int)
        rest.iloc[0] += 390 - 78 - rest.sum()
        box.loc[rows.index[0], "MIN"], box.loc[rest.index, "MIN"] = 78, rest
    late = shots.index[(shots.GAME_ID == g) & (shots.PERIOD == 4) & (shots.MINS_LEFT < 5)]
    shots.loc[late, "PERIOD"] = [5 + i % 6 for i in range(len(late))]
    facts["six_overtimes"] = g

    # Team-games with 5 and with 6 players (rest and injuries), on the precomputed date.
    g5, g6 = regulation[regulation.GAME_DATE == "2023-11-08"].GAME_ID.iloc[:2]
    home5 = int(sched.loc[sched.GAME_ID == g5, "HOME_TEAM_ID"].iloc[0])
    away6 = int(sched.loc[sched.GAME_ID == g6, "AWAY_TEAM_ID"].iloc[0])
    box, _ = _few_players(box, shots, g5, home5, 5)
    box, _ = _few_players(box, shots, g6, away6, 6)
    facts["few_players"] = {(g5, home5, 5), (g6, away6, 6)}

    # A starter with 0 points: the losing team's top scorer misses everything (its score drops).
    g = regulation[regulation.GAME_DATE == "2023-10-26"].GAME_ID.iloc[0]
    loser = box[(box.GAME_ID == g) & (box.WL == "L")].sort_values("PTS").index[-1]
    pts = int(box.loc[loser, "PTS"])
    side = "HOME_PTS" if box.loc[loser, "HOME_AWAY"] == "H" else "AWAY_PTS"
    sched.loc[sched.GAME_ID == g, side] -= pts
    box.loc[loser, ["PTS", "FGM", "FG3M", "FTM"]] = 0
    _pcts(box, [loser])
    shots.loc[(shots.GAME_ID == g) & (shots.PLAYER_ID == box.loc[loser, "PLAYER_ID"]), "SHOT_MADE"] = 0
    facts["zero_points"] = (g, int(box.loc[loser, "PLAYER_ID"]))

    # A 100+ point player and a 200+ point team: made threes (and free throws) added to the
    # winner's top scorer, with their shots; his team does not play on the precomputed date.
    playing_late = set(box[box.GAME_DATE == "2023-11-08"].TEAM_ID)
    winners = box[(box.GAME_DATE == "2023-10-27") & (box.WL == "W") & ~box.TEAM_ID.isin(playing_late)]
    star = winners.sort_values("PTS").index[-1]
    g, team = box.loc[star, "GAME_ID"], box.loc[star, "TEAM_ID"]
    side = "HOME_PTS" if box.loc[star, "HOME_AWAY"] == "H" else "AWAY_PTS"
    score = int(sched.loc[sched.GAME_ID == g, side].iloc[0])
    delta = max(101 - int(box.loc[star, "PTS"]), 201 - score)
    threes, free_throws = divmod(delta, 3)
    box.loc[star, ["FGM", "FGA", "FG3M", "FG3A"]] += threes
    box.loc[star, ["FTM", "FTA"]] += free_throws
    box.loc[star, "PTS"] += delta
    _pcts(box, [star])
    sched.loc[sched.GAME_ID == g, side] += delta
    one = shots[(shots.GAME_ID == g) & (shots.PLAYER_ID == box.loc[star, "PLAYER_ID"])].iloc[[0]]
    made = one.loc[one.index.repeat(threes)].assign(
        SHOT_MADE=1, SHOT_TYPE="3PT", ACTION_TYPE="Jump Shot", BASIC_ZONE="Above the Break 3",
        ZONE_NAME="Center", ZONE_RANGE="24+ ft.", LOC_X=0.0, LOC_Y=30.25, SHOT_DISTANCE=25,
    )  # fmt: skip
    shots = pd.concat([shots, made], ignore_index=True)
    facts["hundred_points"] = (g, int(box.loc[star, "PLAYER_ID"]), int(box.loc[star, "PTS"]), int(team), score + delta)

    folder.mkdir(parents=True)
    for name, df in (("schedule", sched), ("player_box", box), ("shots", shots)):
        df.to_csv(folder / f"{name}.csv.gz", index=False)
    return facts


@pytest.fixture(scope="module")
def extremes(tmp_path_factory) -> tuple[Path, Path, dict]:
    from blocks.settings import reset_settings
    from tasks.phases import run_directly

    root = tmp_path_factory.mktemp("extremes")
    facts = _extreme_season(root / "source" / "2023-24")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOPFLOW_HOME", str(root / "home"))
        mp.setenv("HOOPFLOW_SOURCE_DIR", str(root / "source"))
        (root / "no-espn").mkdir()
        mp.setenv("HOOPFLOW_ESPN_DIR", str(root / "no-espn"))  # a made-up season: ESPN has none of it
        reset_settings()
        settings = get_settings()
        run_directly(["raw", "reconcile", "analytics", "precompute"], [date.fromisoformat(d) for d in EXTREME_DATES])
        settings.warehouse_block().query("CHECKPOINT")
    reset_settings()
    return root / "home", root / "source", facts


def test_rule_legal_extremes_pass_every_critical_check(extremes, monkeypatch, tmp_path):
    from blocks.settings import reset_settings

    home, source, facts = extremes
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(source))  # the spot check fetches from it
    monkeypatch.setenv("HOOPFLOW_ESPN_DIR", str(source.parent / "no-espn"))
    reset_settings()
    shutil.copy(home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    wh = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    dates = tuple(date.fromisoformat(d) for d in EXTREME_DATES)
    scope, thresholds = Scope(dates[0], dates[-1], dates), all_thresholds()
    run = {table: check(wh, table, scope, thresholds) for table in TABLES}
    assert [f"{r.table} {r.name}: {r.message}" for res in run.values() for r in res.values() if r.blocking] == []

    # The extremes are in the tables (not a vacuous pass) ...
    g = facts["six_overtimes"]
    game = wh.query(f"SELECT max(b.min) AS most, max(x.period) AS last_period FROM nba_raw.player_boxscores b "
                    f"JOIN nba_raw.shots x ON x.game_id = b.game_id WHERE b.game_id = '{g}'")  # fmt: skip
    assert (game.most[0], game.last_period[0]) == (48 + 5 * 6, 4 + 6)
    zero_game, zero_player = facts["zero_points"]
    assert wh.query(f"SELECT pts FROM nba_analytics.player_game_summary WHERE game_id = '{zero_game}' "
                    f"AND player_id = {zero_player}").pts[0] == 0  # fmt: skip
    hundred_game, scorer, points, team, team_points = facts["hundred_points"]
    assert points >= 101 and team_points >= 201
    assert wh.query(f"SELECT points FROM nba_analytics.team_offense_game_summary WHERE game_id = '{hundred_game}' "
                    f"AND team_id = {team}").points[0] == team_points  # fmt: skip
    # ... and the checks that rule out the impossible ran on them and passed.
    box = run["player_boxscores"]
    for name in ("rows_per_team_game", "minutes_within_game_length", "team_minutes_fill_the_game",
                 "points_sum_to_final_score", "makes_within_attempts", "impossible_values"):  # fmt: skip
        assert box[name].passed and box[name].severity == "critical", name
    assert run["shots"]["period_within_the_game"].passed

    # What is only unusual is reported, as a warning.
    def warned(table: str, name: str) -> CheckResult:
        r = run[table][name]
        assert not r.passed and r.severity == "warning", (table, name, r.message)
        return r

    for table in ("player_boxscores", "player_game_summary", "ml_feature_store"):
        r = warned(table, "unusual_rows_per_team_game")
        assert {(row["game_id"], row["team_id"], row["row_count"]) for row in r.sample} == facts["few_players"]
    r = warned("player_boxscores", "unusual_values")
    assert {row["player_id"] for row in r.sample} >= {scorer}
    assert "pts 1 outside (−∞, 100]" in r.message and "min 2 outside (−∞, 70]" in r.message  # 78 minutes, both teams
    assert {row["game_id"] for row in warned("schedule", "unusual_values").sample} == {hundred_game}
    assert warned("schedule", "date_gaps").sample == [
        {"last_date_before": date(2023, 10, 27), "next_date": date(2023, 11, 6), "days_without_rows": 9}
    ]
    assert warned("team_offense_game_summary", "unusual_values").observed >= 1  # 200+ points, a 6-OT pace
