"""Analytics formulas on the whole bundled season (no Prefect, no warehouse), and the SQL the
processors run against them. Expected values are computed here independently from the CSVs,
or worked by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tasks.analytics import (
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE,
    TEAM_OFFENSE,
    player_game_context,
    player_game_summary,
    team_defense_game_summary,
    team_offense_game_summary,
)


@pytest.fixture(scope="module")
def raw(season_csv) -> dict[str, pd.DataFrame]:
    """The CSVs shaped like the nba_raw tables (lower-case columns, dates as dates)."""
    out = {}
    for name, df in season_csv.items():
        df = df.rename(columns=str.lower)
        out[name] = df.assign(game_date=pd.to_datetime(df.game_date).dt.date)
    return out


@pytest.fixture(scope="module")
def offense(raw):
    return team_offense_game_summary(raw["player_box"], raw["schedule"], raw["shots"])


@pytest.fixture(scope="module")
def summary(raw, offense):
    return player_game_summary(raw["player_box"], raw["shots"], offense)


def test_points_identity_for_every_game(offense, season_csv):
    box_points = season_csv["player_box"].groupby(["GAME_ID", "TEAM_ID"]).PTS.sum()
    sched = season_csv["schedule"]
    final = pd.concat(
        [
            sched.set_index(["GAME_ID", "HOME_TEAM_ID"]).HOME_PTS.rename_axis(["GAME_ID", "TEAM_ID"]),
            sched.set_index(["GAME_ID", "AWAY_TEAM_ID"]).AWAY_PTS.rename_axis(["GAME_ID", "TEAM_ID"]),
        ]
    )
    got = offense.set_index(["game_id", "team_id"]).points.rename_axis(["GAME_ID", "TEAM_ID"])
    assert len(got) == 2 * len(sched) == 2460
    pd.testing.assert_series_equal(got.sort_index(), box_points.sort_index(), check_names=False)
    pd.testing.assert_series_equal(got.sort_index(), final.sort_index(), check_names=False)


def test_win_flag_matches_the_box_scores_result(offense, summary, season_csv):
    wl = season_csv["player_box"].set_index(["GAME_ID", "PLAYER_ID"]).WL.eq("W")
    got = summary.set_index(["game_id", "player_id"]).win.rename_axis(["GAME_ID", "PLAYER_ID"])
    pd.testing.assert_series_equal(got.sort_index().astype(bool), wl.sort_index(), check_names=False)
    assert offense.win.sum() == len(offense) / 2  # one winner per game, never "always false"


def test_overtime_team_game_by_hand(offense, season_csv):
    # UTA–PHX 2023-11-19 went to two overtimes (schedule NUM_OT = 2): team minutes 290.
    box = season_csv["player_box"].query("GAME_ID == '0022300214' and TEAM_ABBREVIATION == 'PHX'")
    fga, fta, oreb, tov, pts = (box[c].sum() for c in ("FGA", "FTA", "OREB", "TOV", "PTS"))
    poss = fga + 0.44 * fta - oreb + tov
    row = offense.query("game_id == '0022300214' and team_abbr == 'PHX'").iloc[0]
    assert row.overtime_periods == 2
    assert row.possessions == pytest.approx(poss)
    assert row.offensive_rating == pytest.approx(100 * pts / poss)
    assert row.pace == pytest.approx(poss * 48 / (290 / 5))  # not inflated by 10 extra minutes
    assert row.ts_pct == pytest.approx(pts / (2 * (fga + 0.44 * fta)))
    assert (row.win, row.margin, row.points) == (True, 3, 140)


def test_defense_mirrors_the_opponents_offense(raw, offense, season_csv):
    defense = team_defense_game_summary(raw["player_box"], raw["schedule"], raw["shots"])
    row = defense.query("game_id == '0022300214' and team_abbr == 'UTA'").iloc[0]
    phx = offense.query("game_id == '0022300214' and team_abbr == 'PHX'").iloc[0]
    uta_box = season_csv["player_box"].query("GAME_ID == '0022300214' and TEAM_ABBREVIATION == 'UTA'")
    assert row.points_allowed == 140
    assert row.defensive_rating == pytest.approx(100 * 140 / phx.possessions)
    assert row.opponent_pace == pytest.approx(phx.pace)
    assert row.turnovers_forced == phx.tov
    assert (row.steals, row.blocks, row.defensive_rebounds) == (
        uta_box.STL.sum(), uta_box.BLK.sum(), uta_box.DREB.sum(),
    )  # fmt: skip
    # Every game: what one side allowed is what the other scored.
    merged = defense.merge(offense, left_on=["game_id", "opponent_team_id"], right_on=["game_id", "team_id"])
    assert (merged.points_allowed == merged.points).all() and len(merged) == 2460


def test_player_rates_by_hand(summary, season_csv):
    # Jokić, opening night (36 min, 29 pts, 12/22 FG, 3/5 3P, 2/4 FT, 2 TOV), regulation game.
    row = summary.query("game_id == '0022300061' and player_id == 203999").iloc[0]
    den = season_csv["player_box"].query("GAME_ID == '0022300061' and TEAM_ABBREVIATION == 'DEN'")
    team_plays = den.FGA.sum() + 0.44 * den.FTA.sum() + den.TOV.sum()
    assert row.minutes == 36.0
    assert row.usage_rate == pytest.approx(100 * (22 + 0.44 * 4 + 2) * (240 / 5) / (36 * team_plays))
    assert row.ts_pct == pytest.approx(29 / (2 * (22 + 0.44 * 4)))
    assert row.efg_pct == pytest.approx((12 + 0.5 * 3) / 22)


def test_usage_in_overtime_uses_overtime_minutes(summary, season_csv):
    box = season_csv["player_box"].query("GAME_ID == '0022300214' and TEAM_ABBREVIATION == 'PHX'")
    p = box.sort_values("MIN").iloc[-1]
    team_plays = box.FGA.sum() + 0.44 * box.FTA.sum() + box.TOV.sum()
    expected = 100 * (p.FGA + 0.44 * p.FTA + p.TOV) * (290 / 5) / (p.MIN * team_plays)
    row = summary.query("game_id == '0022300214' and player_id == @p.PLAYER_ID").iloc[0]
    assert row.usage_rate == pytest.approx(expected)


def test_usage_is_never_above_100_and_null_without_minutes(summary):
    assert summary.usage_rate.max() <= 100.0
    assert summary.loc[summary.minutes == 0, "usage_rate"].isna().all()
    assert summary.loc[summary.minutes > 0, "usage_rate"].notna().all()
    assert summary.minutes.notna().all()  # never parsed to NULL


def test_usage_is_null_when_the_team_row_is_missing(raw, offense):
    game = raw["player_box"][raw["player_box"].game_id == "0022300061"]
    shots = raw["shots"][raw["shots"].game_id == "0022300061"]
    without_den = offense[(offense.game_id == "0022300061") & (offense.team_abbr != "DEN")]
    out = player_game_summary(game, shots, without_den)
    assert out.loc[out.team_abbreviation == "DEN", "usage_rate"].isna().all()
    assert out.loc[out.team_abbreviation == "LAL", "usage_rate"].notna().all()


def test_shot_zones_add_up_and_disagreements_are_flagged(summary, season_csv):
    zones = summary.paint_attempts + summary.mid_range_attempts + summary.three_attempts
    complete = summary[summary.has_complete_shot_zones]
    assert (zones[complete.index] == complete.fga).all()
    assert (complete.three_attempts == complete.fg3a).all()
    # The README lists the three real box/shot-chart FGA disagreements of the season.
    flagged = summary[~summary.has_complete_shot_zones]
    assert sorted(flagged.game_id) == ["0022300078", "0022300091", "0022300465"]
    # Independently: paint = Restricted Area + In The Paint (Non-RA), made shots only.
    shots = season_csv["shots"]
    paint_makes = shots[shots.BASIC_ZONE.isin(["Restricted Area", "In The Paint (Non-RA)"])].SHOT_MADE.sum()
    assert summary.paint_makes.sum() == paint_makes


def test_context_hand_worked_back_to_back():
    # Jokić's first games of 2023-24 (dates and minutes from player_box.csv.gz).
    games = [("2023-10-24", 36), ("2023-10-27", 35), ("2023-10-29", 30), ("2023-10-30", 35),
             ("2023-11-01", 30), ("2023-11-03", 36), ("2023-11-04", 33), ("2023-11-06", 36)]  # fmt: skip
    history = pd.DataFrame(
        {
            "game_id": [f"g{i}" for i in range(len(games))],
            "game_date": [date.fromisoformat(d) for d, _ in games],
            "season": "2023-24",
            "player_id": 203999,
            "team_id": 1610612743,
            "minutes": [float(m) for _, m in games],
        }
    )

    def context(day: str) -> dict:
        d = date.fromisoformat(day)
        rows = player_game_context(history[history.game_date <= d], d)
        assert len(rows) == 1
        return rows.iloc[0].to_dict()

    first = context("2023-10-24")
    assert pd.isna(first["days_rest"]) and not first["back_to_back"]
    assert first["games_played_season"] == 0 and first["games_last_7_days"] == 0

    # 11-04 follows 11-03: a back-to-back. Last 7 days = 10-28..11-03: 10-29, 10-30, 11-01, 11-03.
    b2b = context("2023-11-04")
    assert b2b["days_rest"] == 0 and b2b["back_to_back"]
    assert b2b["games_last_7_days"] == 4 and b2b["minutes_last_7_days"] == 30 + 35 + 30 + 36
    assert b2b["games_last_14_days"] == 6 and b2b["back_to_backs_last_14_days"] == 1  # 10-30
    assert b2b["games_played_season"] == 6

    # 11-06, one day off after the back-to-back: 10-30 and 11-04 were second halves.
    after = context("2023-11-06")
    assert after["days_rest"] == 1 and not after["back_to_back"]
    assert after["games_last_7_days"] == 4 and after["minutes_last_7_days"] == 35 + 30 + 36 + 33
    assert after["back_to_backs_last_14_days"] == 2 and after["games_played_season"] == 7


def test_context_of_a_whole_date_against_pandas(raw):
    # Every player of 2024-01-15 against a direct computation over the CSV.
    box = raw["player_box"]
    d = date(2024, 1, 15)
    history = box[box.game_date <= d].rename(columns={"min": "minutes"})
    ctx = player_game_context(history, d).set_index("player_id")
    today = box[box.game_date == d]
    assert len(ctx) == len(today)
    for pid in today.player_id:
        before = box[(box.player_id == pid) & (box.game_date < d)]
        days_ago = before.game_date.map(lambda g: (d - g).days)
        assert ctx.loc[pid, "games_played_season"] == len(before)
        assert ctx.loc[pid, "games_last_7_days"] == (days_ago <= 7).sum()
        assert ctx.loc[pid, "minutes_last_7_days"] == before["min"][days_ago <= 7].sum()
        expected_rest = days_ago.min() - 1 if len(before) else None
        got = ctx.loc[pid, "days_rest"]
        assert (pd.isna(got) and expected_rest is None) or got == expected_rest


# ---------------------------------------------------------------- the processors on the warehouse


def test_the_context_processor_on_the_warehouse_equals_pandas_over_the_csv(built_copy, season_csv):
    # What player_game_context wrote for the built four weeks' last date, against the formula
    # over the CSV's box scores (its reads: the season's earlier box scores, the date's players).
    d = date(2023, 11, 20)
    got = built_copy.query("SELECT * FROM nba_analytics.player_game_context WHERE game_date = @d", {"d": d})
    box = season_csv["player_box"].rename(columns=str.lower).rename(columns={"min": "minutes"})
    box = box.assign(game_date=pd.to_datetime(box.game_date).dt.date)
    expected = player_game_context(box[box.game_date <= d], d)
    cols = ["player_id", "games_played_season", "games_last_7_days", "minutes_last_7_days",
            "games_last_14_days", "back_to_backs_last_14_days", "back_to_back"]  # fmt: skip
    assert len(got) == len(expected) == (season_csv["player_box"].GAME_DATE == str(d)).sum()
    pd.testing.assert_frame_equal(
        got[cols].sort_values("player_id").reset_index(drop=True).astype(expected[cols].dtypes.to_dict()),
        expected[cols].sort_values("player_id").reset_index(drop=True),
    )
    rest = got.set_index("player_id").days_rest
    want = expected.set_index("player_id").days_rest
    assert (rest.isna() == want.reindex(rest.index).isna()).all()
    assert (rest.dropna() == want.reindex(rest.dropna().index)).all()


def test_a_date_whose_raw_rows_are_gone_fails_and_keeps_its_analytics(built_copy):
    from engine.phase_run import run_phase_directly
    from tasks.analytics import ANALYTICS
    from tasks.phases import PHASES

    d = date(2023, 11, 10)
    counts = {s.id: int(built_copy.query(f"SELECT count(*) AS n FROM {s.id} WHERE game_date = @d", {"d": d}).n[0])
              for s in ANALYTICS.tables}  # fmt: skip
    assert min(counts.values()) > 0
    for table in ("schedule", "player_boxscores", "shots"):  # gone from the warehouse, still in the ledger
        built_copy.query(f"DELETE FROM nba_raw.{table} WHERE game_date = @d", {"d": d})
    for p in ANALYTICS.processors:  # analytics of the date must run again
        built_copy.query("DELETE FROM nba_ops.run_ledger WHERE processor = @p AND game_date = @d", {"p": p.name, "d": d})
    result = run_phase_directly(ANALYTICS, PHASES, [d])
    # The plan sees the partitions gone although the ledger lists them (the warehouse is the truth).
    assert result.failed == {d: "team_offense_game_summary for 2023-11-10 needs nba_raw.schedule for 2023-11-10; "
                                "1 missing: 2023-11-10"}
    assert result.rows == {}
    # Never zeros: the partitions written before stay as they were.
    for spec_id, n in counts.items():
        assert int(built_copy.query(f"SELECT count(*) AS n FROM {spec_id} WHERE game_date = @d", {"d": d}).n[0]) == n


@pytest.mark.parametrize("spec", [TEAM_OFFENSE, TEAM_DEFENSE, PLAYER_GAME_SUMMARY], ids=lambda s: s.name)
def test_the_sql_processors_write_what_the_formulas_compute_from_the_csv(spec, built_copy, raw, offense, summary):
    """The processors run the formulas as SQL in the warehouse: over the built four weeks,
    every row and value equals the pandas formula over the CSVs (floats within 1e-9)."""
    from tests.conftest import BUILT_END, BUILT_START

    formula = {TEAM_OFFENSE.name: lambda: offense, PLAYER_GAME_SUMMARY.name: lambda: summary,
               TEAM_DEFENSE.name: lambda: team_defense_game_summary(raw["player_box"], raw["schedule"], raw["shots"])}  # fmt: skip
    want = formula[spec.name]()
    want = spec.conform(want[(want.game_date >= BUILT_START) & (want.game_date <= BUILT_END)])
    got = spec.conform(built_copy.query(f"SELECT * FROM {spec.id}"))
    assert len(got) == len(want) > 0
    key = list(spec.key)
    got, want = (f.sort_values(key).reset_index(drop=True) for f in (got, want))
    floats = [c for c, kind in spec.columns if kind == "FLOAT64"]
    pd.testing.assert_frame_equal(got.drop(columns=floats), want.drop(columns=floats))
    pd.testing.assert_frame_equal(got[floats], want[floats], rtol=0, atol=1e-9)
