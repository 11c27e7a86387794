"""The reconcile phase on real data.

- The bundled season: its open findings are exactly the disagreements an independent pandas
  comparison of the four feeds finds (computed here from the CSVs, never from the code).
- One seeded defect per rule on a copy of real dates: each is found by its rule, with the
  shipped severity, and by no other rule.
- Through the flows: a corrected source resolves its finding on the next run and keeps it;
  a critical finding stops the backfill before analytics; a season without ESPN reconciles
  NBA.com's own feeds and says ESPN is not available; a bad ESPN file is refused by field.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from blocks.settings import BUNDLED_ESPN_DIR, get_settings, reset_settings
from tests.conftest import SEASON_DIR, copy_season, use_source

ESPN_SEASON = BUNDLED_ESPN_DIR / "2023-24" / "team_box.csv.gz"
# ESPN's own abbreviations where they differ from NBA.com's (its README)
ESPN_ABBR = {"GS": "GSW", "NO": "NOP", "NY": "NYK", "SA": "SAS", "UTAH": "UTA", "WSH": "WAS"}
# NBA.com box column → ESPN's (player rebounds; `turnovers` without team turnovers)
ESPN_COLUMN = {"fgm": "field_goals_made", "fga": "field_goals_attempted", "fg3m": "three_point_field_goals_made",
               "fg3a": "three_point_field_goals_attempted", "ftm": "free_throws_made",
               "fta": "free_throws_attempted", "oreb": "offensive_rebounds", "dreb": "defensive_rebounds",
               "reb": "total_rebounds", "ast": "assists", "stl": "steals", "blk": "blocks",
               "tov": "turnovers", "pf": "fouls"}  # fmt: skip


def read_feeds(nba_dir: Path, espn_file: Path | None) -> dict[str, pd.DataFrame]:
    feeds = {name: pd.read_csv(nba_dir / f"{name}.csv.gz", dtype={"GAME_ID": str})
             for name in ("schedule", "player_box", "shots")}  # fmt: skip
    feeds["espn"] = pd.read_csv(espn_file, dtype={"game_id": str}) if espn_file else None
    return feeds


def expected_findings(feeds: dict[str, pd.DataFrame]) -> dict[tuple, tuple]:
    """(rule, field, NBA.com game id, entity id) → (the reference feed's value, the other's),
    for every disagreement between the feeds, by pandas alone."""
    sched, box, shots, espn = feeds["schedule"], feeds["player_box"], feeds["shots"], feeds["espn"]
    out: dict[tuple, tuple] = {}
    # player-game: box vs shot chart (outer: a player on one side only counts as zeros)
    s = shots.assign(three=shots.SHOT_TYPE == "3PT")
    chart = s.groupby(["GAME_ID", "PLAYER_ID"]).agg(
        fga=("SHOT_MADE", "size"), fgm=("SHOT_MADE", "sum"),
        fg3a=("three", "sum"), fg3m=("SHOT_MADE", lambda m: int((m * s.loc[m.index, "three"]).sum())),
        fg2m=("SHOT_MADE", lambda m: int((m * ~s.loc[m.index, "three"]).sum())),
    )  # fmt: skip
    b = box.set_index(["GAME_ID", "PLAYER_ID"])[["FGA", "FGM", "FG3A", "FG3M", "FTM", "PTS"]]
    both = b.join(chart, how="outer").fillna(0)
    both["chart_pts"] = 2 * both.fg2m + 3 * both.fg3m + both.FTM
    for f, box_col, chart_col in (("fga", "FGA", "fga"), ("fgm", "FGM", "fgm"), ("fg3a", "FG3A", "fg3a"),
                                  ("fg3m", "FG3M", "fg3m"), ("pts", "PTS", "chart_pts")):  # fmt: skip
        for (g, p), r in both[both[box_col] != both[chart_col]].iterrows():
            out[("shot_chart", f, g, int(p))] = (r[box_col], r[chart_col])
    # team-game: Σ box vs the schedule's score and ESPN's totals
    sides = pd.concat([
        sched.assign(TEAM_ID=sched.HOME_TEAM_ID, ABBR=sched.HOME_TEAM_ABBREVIATION, SCORE=sched.HOME_PTS, SIDE="home"),
        sched.assign(TEAM_ID=sched.AWAY_TEAM_ID, ABBR=sched.AWAY_TEAM_ABBREVIATION, SCORE=sched.AWAY_PTS, SIDE="away"),
    ])[["GAME_ID", "GAME_DATE", "TEAM_ID", "ABBR", "SCORE", "SIDE", "HOME_TEAM_ABBREVIATION", "AWAY_TEAM_ABBREVIATION"]]  # fmt: skip
    sums = box.groupby(["GAME_ID", "TEAM_ID"])[["PTS", *(c.upper() for c in ESPN_COLUMN)]].sum().reset_index()
    teams = sides.merge(sums, on=["GAME_ID", "TEAM_ID"], how="left")
    if espn is not None:
        e = espn.assign(abbr=espn.team_abbreviation.replace(ESPN_ABBR),
                        opp=espn.opponent_team_abbreviation.replace(ESPN_ABBR))  # fmt: skip
        e["home"] = e.abbr.where(e.team_home_away == "home", e.opp)
        e["away"] = e.abbr.where(e.team_home_away == "away", e.opp)
        teams = teams.merge(e, left_on=["GAME_DATE", "HOME_TEAM_ABBREVIATION", "AWAY_TEAM_ABBREVIATION", "ABBR"],
                            right_on=["game_date", "home", "away", "abbr"], how="left")  # fmt: skip
    for r in teams.itertuples():
        others = [r.SCORE] + ([r.team_score] if espn is not None and pd.notna(r.team_score) else [])
        worst = max(others, key=lambda v: abs(r.PTS - v))
        if r.PTS != worst:
            out[("team_points", "pts", r.GAME_ID, int(r.TEAM_ID))] = (r.PTS, worst)
        if espn is not None and pd.notna(r.team_score):
            for f, col in ESPN_COLUMN.items():
                if getattr(r, f.upper()) != getattr(r, col):
                    out[("espn_team_totals", f, r.GAME_ID, int(r.TEAM_ID))] = (getattr(r, f.upper()), getattr(r, col))
    # game: overtimes in three feeds, both teams in every feed
    last = shots.groupby("GAME_ID").PERIOD.max()
    minutes = box.groupby("GAME_ID").MIN.sum() / box.groupby("GAME_ID").TEAM_ID.nunique()
    for r in sched.itertuples():
        values = [last.get(r.GAME_ID, float("nan")) - 4, round((minutes.get(r.GAME_ID, float("nan")) - 240) / 25)]
        worst = max((v for v in values if pd.notna(v)), key=lambda v: abs(r.NUM_OT - v))
        if worst != r.NUM_OT:
            out[("overtime", "num_ot", r.GAME_ID, None)] = (r.NUM_OT, worst)
    return out


def open_findings(wh) -> pd.DataFrame:
    return wh.query("SELECT * FROM nba_ops.discrepancies WHERE status = 'open'")


def as_keys(found: pd.DataFrame) -> dict[tuple, tuple]:
    """The warehouse's findings in expected_findings' shape (reference value, the other's)."""
    out = {}
    for r in found.itertuples():
        ref = {"shot_chart": r.box_value, "team_points": r.box_value, "espn_team_totals": r.box_value,
               "overtime": r.schedule_value}.get(r.rule)  # fmt: skip
        eid = None if pd.isna(r.entity_id) else int(r.entity_id)
        out[(r.rule, r.field, r.game_id, eid)] = (ref, ref - r.difference) if ref is not None else r.message
    return out


# ---------------------------------------------------------------- the bundled season


@pytest.fixture(scope="module")
def season_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole bundled season through raw and reconcile (the task functions, no Prefect)."""
    from tasks.phases import run_directly

    home = tmp_path_factory.mktemp("reconciled") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOPFLOW_HOME", str(home))
        reset_settings()
        dates = get_settings().source_block().game_dates(date.min, date.max)
        run_directly(["raw", "reconcile"], dates)
        get_settings().warehouse_block().query("CHECKPOINT")
    reset_settings()
    return home


@pytest.fixture
def season_wh(season_home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOOPFLOW_HOME", str(season_home))
    reset_settings()
    yield get_settings().warehouse_block()
    reset_settings()


def test_the_seasons_open_findings_are_exactly_the_feeds_disagreements(season_wh) -> None:
    expected = expected_findings(read_feeds(SEASON_DIR, ESPN_SEASON))
    found = open_findings(season_wh)
    assert as_keys(found) == expected
    # what the design note measured: 10 findings on 4 games, all one unit, all warnings
    assert len(expected) == 10 and found.game_id.nunique() == 4
    assert set(found.severity) == {"warning"} and set(found.difference.abs()) == {1}
    assert found.finding_key.is_unique


def test_every_game_of_both_providers_is_mapped_once(season_wh, season_csv) -> None:
    mapped = season_wh.query("SELECT * FROM nba_ops.provider_games")
    espn = pd.read_csv(ESPN_SEASON, dtype={"game_id": str})
    assert set(mapped.status) == {"matched"}
    assert sorted(mapped.game_id) == sorted(season_csv["schedule"].GAME_ID)
    assert sorted(mapped.provider_game_id) == sorted(espn.game_id.unique())
    quality = season_wh.query("SELECT * FROM nba_ops.game_quality")
    assert len(quality) == len(season_csv["schedule"])
    # a game with one warning pair failed keeps a high score; the others are perfect
    flagged = set(open_findings(season_wh).game_id)
    assert (quality.set_index("game_id").quality_score.drop(list(flagged)) == 100).all()
    assert set(quality.quality_bucket) == {"high"}


# ---------------------------------------------------------------- seeded defects, one per rule

DAY = "2023-11-01"  # 2023-11-01: 13 games, no real finding


def espn_copy(tmp_path: Path, dates: list[str]) -> Path:
    folder = tmp_path / "espn" / "2023-24"
    folder.mkdir(parents=True)
    df = pd.read_csv(ESPN_SEASON, dtype=str, keep_default_na=False)
    df[df.game_date.isin(dates)].to_csv(folder / "team_box.csv.gz", index=False)
    return folder / "team_box.csv.gz"


def use_espn(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("HOOPFLOW_ESPN_DIR", str(folder))
    reset_settings()


def edit(path: Path, change) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = change(df)
    df.to_csv(path, index=False)


def seed_defects(nba: Path, espn: Path) -> dict[str, tuple[str, set[tuple[str, str]], str]]:
    """One defect per rule, each in its own game of DAY: game → (what, {(rule, field)}, severity)."""
    sched = pd.read_csv(nba / "schedule.csv.gz", dtype=str)
    games = sched[sched.GAME_DATE == DAY].sort_values("GAME_ID")
    g = list(games.GAME_ID)
    shots = pd.read_csv(nba / "shots.csv.gz", dtype=str, keep_default_na=False)
    assert set(shots[shots.GAME_ID.isin(g[:7])].PERIOD.astype(int)) <= {1, 2, 3, 4}, "regulation games"
    assert (games.NUM_OT.astype(int)[:7] == 0).all()

    def first_missed_two(df: pd.DataFrame, game: str) -> int:
        rows = df[(df.GAME_ID == game) & (df.SHOT_TYPE == "2PT") & (df.SHOT_MADE == "0") & (df.PERIOD == "1")]
        return rows.index[0]

    # shot_chart: a missed two lost from the chart (FGA only) in g0; one made into a make in g1 (FGM, PTS)
    edit(nba / "shots.csv.gz", lambda df: df.drop(first_missed_two(df, g[0])))
    edit(nba / "shots.csv.gz", lambda df: df.assign(SHOT_MADE=df.SHOT_MADE.where(df.index != first_missed_two(df, g[1]), "1")))
    # team_points: the schedule's home score one more in g2 (its margin stays > 1)
    margin = (games.HOME_PTS.astype(int) - games.AWAY_PTS.astype(int)).abs()
    assert margin[games.GAME_ID == g[2]].iloc[0] > 1
    edit(nba / "schedule.csv.gz", lambda df: df.assign(HOME_PTS=df.HOME_PTS.where(df.GAME_ID != g[2], str(int(df.HOME_PTS[df.GAME_ID == g[2]].iloc[0]) + 1))))
    # overtime: g3 said to have gone to overtime
    edit(nba / "schedule.csv.gz", lambda df: df.assign(NUM_OT=df.NUM_OT.where(df.GAME_ID != g[3], "1")))
    # ESPN: the home team's assists one more in g4; g5's away row gone; g6's game gone
    espn_df = pd.read_csv(espn, dtype=str, keep_default_na=False)
    abbr = lambda a: {v: k for k, v in ESPN_ABBR.items()}.get(a, a)  # noqa: E731
    home_of = {r.GAME_ID: abbr(r.HOME_TEAM_ABBREVIATION) for r in games.itertuples()}
    espn_game = {gid: espn_df[(espn_df.game_date == DAY) & (espn_df.team_abbreviation == home_of[gid])].game_id.iloc[0]
                 for gid in g[4:7]}  # fmt: skip
    home4 = (espn_df.game_id == espn_game[g[4]]) & (espn_df.team_home_away == "home")
    espn_df.loc[home4, "assists"] = str(int(espn_df.loc[home4, "assists"].iloc[0]) + 1)
    espn_df = espn_df[~((espn_df.game_id == espn_game[g[5]]) & (espn_df.team_home_away == "away"))]
    espn_df = espn_df[espn_df.game_id != espn_game[g[6]]]
    # and a game ESPN lists on DAY that NBA.com does not: two teams idle that day (copied from another date)
    other = pd.read_csv(ESPN_SEASON, dtype=str, keep_default_na=False)
    playing = set(espn_df[espn_df.game_date == DAY].team_abbreviation) | {abbr(a) for a in games.AWAY_TEAM_ABBREVIATION} | set(home_of.values())
    idle = other[other.game_date == "2023-11-02"].groupby("game_id").filter(lambda x: not set(x.team_abbreviation) & playing)
    ghost = idle[idle.game_id == idle.game_id.iloc[0]].assign(game_id="499999999", game_date=DAY)
    pd.concat([espn_df, ghost]).to_csv(espn, index=False)
    return {
        g[0]: ("a missed shot lost from the shot chart", {("shot_chart", "fga")}, "warning"),
        g[1]: ("a miss turned into a make in the shot chart", {("shot_chart", "fgm"), ("shot_chart", "pts")}, "mixed"),
        g[2]: ("the schedule's home score off by one", {("team_points", "pts")}, "critical"),
        g[3]: ("an overtime the game did not have", {("overtime", "num_ot")}, "critical"),
        g[4]: ("ESPN's assists off by one", {("espn_team_totals", "ast")}, "warning"),
        g[5]: ("ESPN without one team", {("teams_present", "team_id")}, "critical"),
        g[6]: ("ESPN without the game", {("provider_game", "game_id")}, "critical"),
        "espn:499999999": ("an ESPN game NBA.com does not have", {("provider_game", "game_id")}, "critical"),
    }


def test_each_seeded_defect_is_found_by_its_rule_and_no_other(tmp_path, monkeypatch, hoopflow_home) -> None:
    from tasks.phases import run_directly

    nba = copy_season(tmp_path, [DAY])
    espn = espn_copy(tmp_path, [DAY])
    seeded = seed_defects(nba, espn)
    use_source(monkeypatch, nba)
    use_espn(monkeypatch, espn.parent.parent)
    run_directly(["raw", "reconcile"], [date.fromisoformat(DAY)])
    found = open_findings(get_settings().warehouse_block())
    by_game = {}
    for r in found.itertuples():
        key = r.game_id if isinstance(r.game_id, str) else f"espn:{r.provider_game_id}"
        by_game.setdefault(key, set()).add((r.rule, r.field, r.severity))
    assert {g: {(rule, f) for rule, f, _ in v} for g, v in by_game.items()} == {g: s[1] for g, s in seeded.items()}
    severities = {g: {sev for _, _, sev in v} for g, v in by_game.items()}
    g1 = next(g for g, s in seeded.items() if s[2] == "mixed")
    # the make the chart gained: FGM off by one (a warning), its points by two (critical)
    assert {(rule, f, sev) for rule, f, sev in by_game[g1]} == {("shot_chart", "fgm", "warning"), ("shot_chart", "pts", "critical")}
    for g, (what, _, severity) in seeded.items():
        if severity != "mixed":
            assert severities[g] == {severity}, what
    # the ghost game is kept with its ESPN id, never dropped
    ghost = found[found.provider_game_id == "499999999"].iloc[0]
    assert pd.isna(ghost.game_id) and "has no NBA.com game" in ghost.message
    quality = get_settings().warehouse_block().query("SELECT * FROM nba_ops.game_quality").set_index("game_id")
    clean = [g for g in quality.index if g not in seeded]
    assert (quality.loc[clean, "quality_score"] == 100).all() and len(clean) == 13 - 7
    assert quality.loc[next(g for g, s in seeded.items() if s[2] == "critical"), "quality_bucket"] != "high"


# ---------------------------------------------------------------- through the flows


def _artifact(key: str):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return max(found, key=lambda a: a.created)


FIND_DATES = ["2023-10-27", "2023-10-28"]  # 0022300078 (5 findings), 0022300089, 0022300091


@pytest.mark.e2e
def test_a_corrected_source_resolves_its_finding_and_keeps_it(prefect_api, tmp_path, monkeypatch, hoopflow_home) -> None:
    from flows.backfill import backfill

    use_source(monkeypatch, copy_season(tmp_path, FIND_DATES))
    espn = espn_copy(tmp_path, FIND_DATES)
    use_espn(monkeypatch, espn.parent.parent)
    start, end = (date.fromisoformat(d) for d in FIND_DATES)
    assert backfill(start, end, ["raw", "reconcile"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    before = wh.query("SELECT * FROM nba_ops.discrepancies").set_index("finding_key").sort_index()
    assert len(before) == 7 and set(before.status) == {"open"}

    # ESPN corrects DEN's blocks in 0022300078 (10 in NBA.com's box, 9 in ESPN's)
    edit(espn, lambda df: df.assign(blocks=df.blocks.where(~((df.game_date == "2023-10-27") & (df.team_abbreviation == "DEN") & (df.blocks == "9")), "10")))
    assert backfill(start, end, ["raw", "reconcile"], return_state=True).is_completed()
    after = wh.query("SELECT * FROM nba_ops.discrepancies").set_index("finding_key").sort_index()
    assert after.index.is_unique and set(after.index) == set(before.index)
    fixed = [k for k in after.index if k.startswith("espn_team_totals|blk|0022300078|")]
    assert len(fixed) == 1 and after.loc[fixed[0], "status"] == "resolved"
    assert pd.notna(after.loc[fixed[0], "resolved_at"])
    others = after.drop(fixed)
    assert set(others.status) == {"open"}
    assert (others.first_seen_at == before.drop(fixed).first_seen_at).all()
    # only 2023-10-27 changed: its findings were seen again, 2023-10-28's were not re-evaluated
    # the run's artifacts say so: the backfill reconciled the changed date only; its report
    # (what this run resolved) and its open findings
    day1 = others.game_date.astype(str).str[:10] == "2023-10-27"
    report, table = _artifact("reconcile-report"), _artifact("reconcile-open-findings")
    games = int((pd.read_csv(SEASON_DIR / "schedule.csv.gz").GAME_DATE == "2023-10-27").sum())
    assert report.description == f"reconcile 2023-10-27: {games} games, 4 open findings (0 critical, 4 warning) on 1 game"
    assert "Opened by this run: 0; resolved by this run: 1;" in report.data
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert sorted((r["rule"], r["field"], r["game_id"]) for r in rows) == sorted(
        tuple(k.split("|")[:3]) for k in others.index[day1])  # fmt: skip
    assert (others.last_seen_at[day1] > before.last_seen_at.reindex(others.index)[day1]).all()
    assert (others.last_seen_at[~day1] == before.last_seen_at.reindex(others.index)[~day1]).all()

    # a rerun of everything sees the open ones again: last_seen_at moves, nothing is duplicated
    from flows.reconcile import reconcile

    assert reconcile(start, end, reprocess="all", return_state=True).is_completed()
    again = wh.query("SELECT * FROM nba_ops.discrepancies").set_index("finding_key").sort_index()
    assert again.index.is_unique and len(again) == 7
    assert (again.last_seen_at.drop(fixed) > after.last_seen_at.drop(fixed)).all()
    assert again.loc[fixed[0], "resolved_at"] == after.loc[fixed[0], "resolved_at"]


@pytest.mark.e2e
def test_a_critical_finding_stops_the_backfill_before_analytics(prefect_api, tmp_path, monkeypatch, hoopflow_home) -> None:
    from flows.backfill import backfill

    use_source(monkeypatch, copy_season(tmp_path, ["2023-10-24", "2023-10-25"]))
    espn = espn_copy(tmp_path, ["2023-10-24", "2023-10-25"])
    # a game ESPN lacks: both rows of ATL's game on 2023-10-25
    edit(espn, lambda df: df[~df.game_id.isin(df.game_id[(df.game_date == "2023-10-25") & (df.team_abbreviation == "ATL")])])
    use_espn(monkeypatch, espn.parent.parent)
    state = backfill(date(2023, 10, 24), date(2023, 10, 25), ["raw", "reconcile", "analytics"], return_state=True)
    assert state.is_failed()
    report = state.result(raise_on_failure=False).report
    assert "no_open_critical_findings" in report.stopped_by and "reconcile" in report.stopped_by
    assert [r.phase for r in report.results] == ["raw", "reconcile"]
    wh = get_settings().warehouse_block()
    assert int(wh.query("SELECT count(*) AS n FROM nba_analytics.player_game_summary").n[0]) == 0
    (f,) = open_findings(wh).itertuples()
    assert (f.rule, f.severity, f.espn_value, f.schedule_value) == ("provider_game", "critical", 0, 1)


@pytest.mark.e2e
def test_a_season_without_espn_reconciles_nba_alone(prefect_api, tmp_path, monkeypatch, hoopflow_home, capsys) -> None:
    from hoopflow import cli

    use_source(monkeypatch, copy_season(tmp_path, FIND_DATES))
    (tmp_path / "no-espn").mkdir()
    use_espn(monkeypatch, tmp_path / "no-espn")
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(hoopflow_home / "results"))
    assert cli.main(["reconcile", "--start", FIND_DATES[0], "--end", FIND_DATES[1]]) == 2  # warnings only
    out = capsys.readouterr().out
    assert "ESPN not available on 2 dates" in out
    wh = get_settings().warehouse_block()
    expected = expected_findings(read_feeds(tmp_path / "source" / "2023-24", None))
    assert as_keys(open_findings(wh)) == expected
    assert {k[:2] for k in expected} == {("shot_chart", "fga")} and len(expected) == 2  # NBA.com's own conflicts
    assert set(wh.query("SELECT status FROM nba_ops.provider_games").status) == {"espn_unavailable"}
    assert not wh.query("SELECT espn_available FROM nba_ops.game_quality").espn_available.any()
    assert int(wh.query("SELECT count(*) AS n FROM nba_raw.espn_team_boxscores").n[0]) == 0


@pytest.mark.e2e
def test_a_bad_espn_file_is_refused_by_field_and_the_other_dates_go_on(prefect_api, tmp_path, monkeypatch, hoopflow_home) -> None:
    from flows.raw import raw

    dates = ["2023-10-24", "2023-10-25"]
    use_source(monkeypatch, copy_season(tmp_path, dates))
    espn = espn_copy(tmp_path, dates)
    edit(espn, lambda df: df.assign(team_id=df.team_id.where(~((df.game_date == "2023-10-25") & (df.team_abbreviation == "ATL")), "77")))
    use_espn(monkeypatch, espn.parent.parent)
    state = raw(date(2023, 10, 24), date(2023, 10, 25), return_state=True)
    assert state.is_failed() and "2023-10-25" in state.message
    wh = get_settings().warehouse_block()
    ledger = wh.query("SELECT processor, game_date, status, error FROM nba_ops.run_ledger WHERE status = 'failed'")
    (row,) = ledger.itertuples()
    assert row.processor == "espn_team_boxscores" and str(row.game_date)[:10] == "2023-10-25"
    assert "espn_team_box/2023-10-25.csv" in row.error and "field team_id" in row.error and "77" in row.error
    assert (hoopflow_home / "landing" / "espn_team_box" / "2023-10-25.csv").is_file()  # the landing copy stays
    loaded = wh.query("SELECT game_date, count(*) AS n FROM nba_raw.espn_team_boxscores GROUP BY game_date")
    assert [str(d)[:10] for d in loaded.game_date] == ["2023-10-24"]  # nothing of the bad date, the other loaded
    assert int(wh.query("SELECT count(*) AS n FROM nba_raw.player_boxscores WHERE game_date = '2023-10-25'").n[0]) > 0
