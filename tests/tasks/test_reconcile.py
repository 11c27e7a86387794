"""The reconcile phase's plain functions on hand-made rows: mapping the providers' games,
applying the rules, merging a finding's history, scoring a game; and the rules file's
validation. Expected values are worked out by hand in each test."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from blocks.settings import REPO_ROOT
from tasks.reconcile import evaluate, findings, game_quality_of, map_provider_games, merge_history
from tasks.reconcile_rules import RULES, ReconcileConfigError, load_rules

DAY = date(2024, 1, 15)
# NBA.com / ESPN ids of three teams (config/provider_teams.yaml)
DEN, LAL, GSW = 1610612743, 1610612747, 1610612744
E_DEN, E_LAL, E_GS, E_NY = 7, 13, 9, 18


def nba_games(*games: tuple[str, int, int]) -> pd.DataFrame:
    abbr = {DEN: "DEN", LAL: "LAL", GSW: "GSW"}
    return pd.DataFrame([{"game_id": g, "home_team_id": h, "away_team_id": a, "home_team": abbr[h],
                          "away_team": abbr[a]} for g, h, a in games])  # fmt: skip


def espn_rows(*rows: tuple[str, int, str, int]) -> pd.DataFrame:
    """(ESPN game id, team id, home|away, opponent id)."""
    return pd.DataFrame([{"game_id": g, "team_id": t, "team_home_away": side, "opponent_team_id": o}
                         for g, t, side, o in rows])  # fmt: skip


def test_mapping_names_every_game_of_both_providers() -> None:
    nba = nba_games(("0022300500", DEN, LAL), ("0022300501", GSW, DEN))
    espn = espn_rows(
        ("401", E_DEN, "home", E_LAL), ("401", E_LAL, "away", E_DEN),  # = 0022300500
        ("402", E_NY, "home", E_GS),  # NY-GS: NBA.com has no such game; one row says both teams
    )
    mapped = map_provider_games(nba, espn, espn_available=True).set_index(["game_id", "provider_game_id"], drop=False)
    got = {(r.game_id if isinstance(r.game_id, str) else None, r.provider_game_id if isinstance(r.provider_game_id, str) else None): r.status
           for r in mapped.itertuples()}  # fmt: skip
    assert got == {("0022300500", "401"): "matched", ("0022300501", None): "missing_in_espn",
                   (None, "402"): "missing_in_nba"}  # fmt: skip
    row = mapped[mapped.status == "missing_in_nba"].iloc[0]
    assert (row.home_team, row.away_team, row.provider_teams) == ("NYK", "GSW", 1)


def test_a_game_two_espn_games_map_to_is_a_duplicate_both_kept() -> None:
    nba = nba_games(("0022300500", DEN, LAL))
    espn = espn_rows(("401", E_DEN, "home", E_LAL), ("401", E_LAL, "away", E_DEN),
                     ("409", E_DEN, "home", E_LAL), ("409", E_LAL, "away", E_DEN))  # fmt: skip
    mapped = map_provider_games(nba, espn, espn_available=True)
    assert sorted(mapped.provider_game_id) == ["401", "409"]
    assert set(mapped.status) == {"duplicate"}


def test_without_espn_every_game_says_espn_unavailable() -> None:
    mapped = map_provider_games(nba_games(("0022300500", DEN, LAL)), espn_rows(), espn_available=False)
    assert list(mapped.status) == ["espn_unavailable"] and mapped.provider_game_id.isna().all()


def long_rows(*rows: dict) -> pd.DataFrame:
    base = {"game_id": "0022300500", "provider_game_id": "401", "entity": "team", "entity_id": DEN,
            "entity_name": "DEN", "box_value": np.nan, "shot_chart_value": np.nan, "schedule_value": np.nan,
            "espn_value": np.nan}  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows])


def test_rules_give_tolerance_severity_and_critical_above() -> None:
    rules = load_rules()
    checks = evaluate(long_rows(
        {"rule": "espn_team_totals", "field": "ast", "box_value": 24, "espn_value": 25},  # off by 1: warning
        {"rule": "espn_team_totals", "field": "fga", "box_value": 90, "espn_value": 85},  # off by 5 > 2: critical
        {"rule": "espn_team_totals", "field": "stl", "box_value": 7, "espn_value": 7},  # passes
        # three feeds: the difference is to the furthest one (box 110 vs schedule 110, ESPN 108)
        {"rule": "team_points", "field": "pts", "box_value": 110, "schedule_value": 110, "espn_value": 108},
        # ESPN not available: box vs schedule only, and they agree
        {"rule": "team_points", "field": "pts", "box_value": 99, "schedule_value": 99, "entity_id": LAL},
        # nothing to compare with: not a check
        {"rule": "espn_team_totals", "field": "blk", "box_value": 5},
    ), rules)
    got = {(r.field, r.entity_id): (r.difference, r.severity) for r in checks.itertuples()}
    assert got == {("ast", DEN): (-1, "warning"), ("fga", DEN): (5, "critical"), ("stl", DEN): (0, None),
                   ("pts", DEN): (2, "critical"), ("pts", LAL): (0, None)}  # fmt: skip


def test_findings_carry_a_stable_key_and_a_message_with_each_value() -> None:
    checks = evaluate(long_rows({"rule": "espn_team_totals", "field": "ast", "box_value": 24, "espn_value": 25}), load_rules())
    (f,) = findings(checks, DAY).itertuples()
    assert f.finding_key == f"espn_team_totals|ast|0022300500|team|{DEN}"
    assert f.message == "ast: box 24, espn 25 (difference -1, tolerance 0)"


def finding(key: str, **extra: object) -> dict:
    return {"finding_key": key, "game_date": DAY, "rule": "shot_chart", "field": "fga", "entity": "player",
            "severity": "warning", "difference": 1.0, **extra}  # fmt: skip


def test_history_keeps_first_seen_resolves_what_is_gone_and_never_duplicates() -> None:
    t0 = datetime(2024, 1, 16, 6, tzinfo=timezone.utc)
    t1, t2, t3 = (t0 + timedelta(hours=h) for h in (1, 2, 3))
    first = merge_history(pd.DataFrame(), pd.DataFrame([finding("a"), finding("b")]), t0)
    assert list(first.status) == ["open", "open"] and (first.first_seen_at == t0).all()

    # b seen again, a gone (its source corrected), c new
    second = merge_history(first, pd.DataFrame([finding("b"), finding("c")]), t1).set_index("finding_key")
    assert list(second.index) == ["a", "b", "c"]
    assert second.loc["a", "status"] == "resolved" and second.loc["a", "resolved_at"] == t1
    assert second.loc["a", "last_seen_at"] == t0
    assert second.loc["b", "first_seen_at"] == t0 and second.loc["b", "last_seen_at"] == t1
    assert second.loc["c", "first_seen_at"] == t1 and second.loc["c", "status"] == "open"

    # nothing seen: the open ones resolve, the resolved one stays as it was
    third = merge_history(second.reset_index(), pd.DataFrame(columns=["finding_key"]), t2).set_index("finding_key")
    assert set(third.status) == {"resolved"} and third.loc["a", "resolved_at"] == t1
    assert third.loc["b", "resolved_at"] == t2

    # a comes back: reopened, with its first sighting
    fourth = merge_history(third.reset_index(), pd.DataFrame([finding("a")]), t3).set_index("finding_key")
    assert fourth.loc["a", "status"] == "open" and fourth.loc["a", "first_seen_at"] == t0
    assert pd.isna(fourth.loc["a", "resolved_at"]) and fourth.index.is_unique and len(fourth) == 3


def test_quality_is_the_weighted_share_of_checks_passed() -> None:
    rules = load_rules()  # weights: critical 10, warning 1
    mapping = pd.DataFrame([{"game_id": "0022300500", "status": "matched"}])
    checks = evaluate(long_rows(
        {"rule": "espn_team_totals", "field": "ast", "box_value": 24, "espn_value": 25},  # warning pair, failed
        {"rule": "espn_team_totals", "field": "stl", "box_value": 7, "espn_value": 7},  # warning pair, passed
        {"rule": "team_points", "field": "pts", "box_value": 110, "schedule_value": 110, "espn_value": 110},  # critical, passed
        {"rule": "team_points", "field": "pts", "box_value": 99, "schedule_value": 99, "espn_value": 99, "entity_id": LAL},
    ), rules)
    (q,) = game_quality_of(checks, mapping, rules).itertuples()
    # pairs: ast failed (weight 1), stl passed (1), pts passed (10): 100 · 11 / 12
    assert (q.checks, q.checks_failed, q.warning_findings, q.critical_findings) == (3, 1, 1, 0)
    assert q.quality_score == round(100 * 11 / 12, 1) and q.quality_bucket == "high"
    # a points disagreement: the critical pair fails: 100 · 2 / 12 = 16.7, low
    checks.loc[checks.field == "pts", "severity"] = "critical"
    (q,) = game_quality_of(checks, mapping, rules).itertuples()
    assert q.quality_score == round(100 * 1 / 12, 1) and q.quality_bucket == "low"


def test_shipped_rules_configure_every_field_of_every_rule() -> None:
    rules = load_rules(REPO_ROOT / "config" / "reconcile.yaml")
    assert {r: set(f) for r, f in rules.rules.items()} == {r: set(spec.fields) for r, spec in RULES.items()}
    # the severities the real season asks for (docs/design/reconciliation.md)
    assert rules.field("team_points", "pts").severity == "critical"
    assert rules.field("shot_chart", "pts").severity == "critical"
    assert rules.field("shot_chart", "fga").severity_of(1) == "warning"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["rules"].update(bogus={"pts": {"tolerance": 0, "severity": "warning"}}), "unknown ['bogus']"),
        (lambda c: c["rules"]["shot_chart"].pop("fg3m"), "missing ['fg3m']"),
        (lambda c: c["rules"]["overtime"].update(minutes={"tolerance": 0, "severity": "warning"}), "unknown fields ['minutes']"),
        (lambda c: c["rules"]["overtime"]["num_ot"].update(tolerence=1), "tolerence"),
        (lambda c: c["rules"]["overtime"]["num_ot"].update(severity="fatal"), "fatal"),
        (lambda c: c.update(bucket={"high": 90}), "bucket"),
    ],
)
def test_a_bad_rules_file_is_an_error_naming_it(tmp_path: Path, edit, message: str) -> None:
    config = yaml.safe_load((REPO_ROOT / "config" / "reconcile.yaml").read_text())
    edit(config)
    path = tmp_path / "reconcile.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ReconcileConfigError) as err:
        load_rules(path)
    assert str(path) in str(err.value) and message in str(err.value)
