"""config/thresholds.yaml: parsed by a real YAML parser into typed models; every section
read (the old reader ignored sections); unknown names are errors; settings override values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from blocks.settings import REPO_ROOT, reset_settings
from tasks.ml import model_gate
from engine.thresholds import GATE_SECTIONS, ThresholdsError
from tasks.validate import all_thresholds

SHIPPED = REPO_ROOT / "config" / "thresholds.yaml"


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch):
    reset_settings()
    yield
    reset_settings()


def _use(monkeypatch, tmp_path: Path, text: str) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS_FILE", str(path))
    reset_settings()


def test_every_section_of_the_shipped_file_is_read_into_its_own_table():
    raw = {k: v for k, v in yaml.safe_load(SHIPPED.read_text()).items() if k not in GATE_SECTIONS}
    loaded = all_thresholds()
    assert set(raw) <= set(loaded)
    for table, section in raw.items():
        for key, value in section.items():
            got = getattr(loaded[table], key)
            if key in ("ranges", "usual_ranges"):  # column → typed band
                got = {c: band.model_dump(exclude_unset=True) for c, band in got.items()}
            elif isinstance(value, dict) and key != "null_rates" and key != "identities":
                got = got.model_dump(exclude_unset=True)
                value = {k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items()}
            assert got == value, (table, key)
    # Two tables with the same key keep their own values (the old reader did not).
    assert loaded["player_boxscores"].usual_ranges["pts"].max == 100
    assert loaded["schedule"].usual_ranges["home_pts"].max == 200
    assert loaded["team_offense_game_summary"].rows_per_game == 2
    assert loaded["player_game_summary"].rows_per_game is None


def test_an_unknown_key_is_an_error(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "player_game_summary:\n  max_nul_rate: 0.1\n")
    with pytest.raises(ThresholdsError, match="player_game_summary.*max_nul_rate"):
        all_thresholds()


def test_an_unknown_table_is_an_error(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "player_game_sumary:\n  coverage_min: 1\n")
    with pytest.raises(ThresholdsError, match="unknown table section 'player_game_sumary'"):
        all_thresholds()


def test_an_unknown_column_or_identity_is_an_error(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "player_game_summary:\n  null_rates: {usage: 0.1}\n")
    with pytest.raises(ThresholdsError, match=r"null_rates: \['usage'\] not columns"):
        all_thresholds()
    _use(monkeypatch, tmp_path, "shots:\n  identities: {shots_match_fga: 0.1}\n")
    with pytest.raises(ThresholdsError, match="unknown \\['shots_match_fga'\\]"):
        all_thresholds()


def test_a_wrongly_typed_value_is_an_error(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "schedule:\n  coverage_min: lots\n")
    with pytest.raises(ThresholdsError, match="coverage_min"):
        all_thresholds()
    _use(monkeypatch, tmp_path, "schedule:\n  ranges: {home_pts: {min: 200, max: 50}}\n")
    with pytest.raises(ThresholdsError, match="min 200.0 > max 50.0"):
        all_thresholds()


def test_broken_yaml_names_the_file(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "schedule: [unclosed\n")
    with pytest.raises(ThresholdsError, match="thresholds.yaml: not valid YAML"):
        all_thresholds()


def test_settings_override_any_value(monkeypatch):
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__PLAYER_GAME_SUMMARY__RANGES__PTS__MAX", "60")
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__SHOTS__COVERAGE_MIN", "0.5")
    reset_settings()
    loaded = all_thresholds()
    assert loaded["player_game_summary"].ranges["pts"].max == 60
    assert loaded["player_game_summary"].ranges["pts"].min == 0  # the rest of the file stays
    assert loaded["shots"].coverage_min == 0.5
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__SHOTS__COVERAGE_MAX", "0.5")
    reset_settings()
    with pytest.raises(ThresholdsError, match="coverage_max"):  # overrides are checked too
        all_thresholds()


def test_a_table_without_a_section_gets_the_defaults(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "schedule:\n  max_gap_days: 8\n")
    loaded = all_thresholds()
    assert loaded["player_game_context"].coverage_min == 1.0
    assert loaded["player_game_context"].ranges == {}


# ---------------------------------------------------------------- the ML gate (section `models`)


def test_the_models_section_is_read_into_the_ml_gate():
    raw = yaml.safe_load(SHIPPED.read_text())["models"]
    gate = model_gate()
    assert gate.model_dump(exclude_unset=True) == raw
    assert gate.min_mae_margin == 0.03 and gate.max_tier_bias["under_5"] == 1.5
    all_thresholds()  # the validation's reader accepts the section


def test_an_unknown_gate_key_or_tier_is_an_error(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "models:\n  min_mae_margn: 0.1\n")
    for read in (model_gate, all_thresholds):  # the validation's reader checks it too
        with pytest.raises(ThresholdsError, match=r"models.min_mae_margn: unknown key"):
            read()
    _use(monkeypatch, tmp_path, "models:\n  min_mae_margin: 0.1\n  max_tier_bias: {30_plus: 1}\n")
    with pytest.raises(ThresholdsError, match=r"models.max_tier_bias.30_plus"):
        model_gate()
    _use(monkeypatch, tmp_path, "models:\n  min_mae_margin: -0.1\n")
    with pytest.raises(ThresholdsError, match="models.min_mae_margin: Input should be greater than or equal to 0"):
        model_gate()


def test_a_file_without_the_gate_refuses_to_judge(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "schedule:\n  max_gap_days: 8\n")
    with pytest.raises(ThresholdsError, match="no 'models' section"):
        model_gate()
    _use(monkeypatch, tmp_path, "models:\n  max_tier_bias: {under_5: 1}\n")
    with pytest.raises(ThresholdsError, match="models.min_mae_margin: Field required"):
        model_gate()


def test_settings_override_the_gate(monkeypatch):
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MIN_MAE_MARGIN", "0.5")
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MAX_TIER_BIAS__UNDER_5", "0.2")
    reset_settings()
    gate = model_gate()
    assert gate.min_mae_margin == 0.5 and gate.max_tier_bias["under_5"] == 0.2
    assert gate.max_tier_bias["25_plus"] == 2.5  # the rest of the section stays
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MIN_MAE_MARGINS", "0.5")
    reset_settings()
    with pytest.raises(ThresholdsError, match="min_mae_margins: unknown key"):
        model_gate()


# ---------------------------------------------------------------- critical limits are rules

# Every key of a table section, by the severity of the check it configures (engine/checks.py
# DEFAULT_SEVERITY / NAMED_SEVERITY; the shipped file overrides none).
CRITICAL_KEYS = {
    "coverage_min", "completeness_min", "rows_per_game", "rows_per_team_game", "max_duplicate_keys",
    "null_rates", "ranges", "identities", "bootstrap_days", "spot_check",
}  # fmt: skip
WARNING_KEYS = {"usual_rows_per_team_game", "usual_ranges", "max_gap_days", "monthly_volume", "regression"}


def _value_lines(text: str):
    """(table, key, line) for each line of a table section that sets a value: a key with an
    inline value, or a line nested under a key (a column's band)."""
    table = key = None
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if not code.strip():
            continue
        indent = len(code) - len(code.lstrip())
        name, _, value = code.strip().partition(":")
        if indent == 0:
            table, key = name, None
        elif table in GATE_SECTIONS:
            continue
        elif indent == 2:
            key = name
            if value.strip():
                yield table, key, line
        else:
            yield table, key, line


def _comment(line: str) -> str:
    return line.split("#", 1)[1].strip() if "#" in line else ""


def test_the_keys_are_split_by_severity_as_the_checks_run_them():
    from engine.checks import DEFAULT_SEVERITY, NAMED_SEVERITY
    from engine.thresholds import TableThresholds

    assert CRITICAL_KEYS | WARNING_KEYS | {"severity"} == set(TableThresholds.model_fields)
    assert not CRITICAL_KEYS & WARNING_KEYS
    assert {DEFAULT_SEVERITY[k] for k in ("date_gaps", "monthly_volume", "feature_regression")} == {"warning"}
    assert NAMED_SEVERITY["unusual_values"] == NAMED_SEVERITY["unusual_rows_per_team_game"] == "warning"
    assert DEFAULT_SEVERITY["impossible_values"] == NAMED_SEVERITY["rows_per_team_game"] == "critical"
    # No shipped section changes a severity (the split above would not hold).
    assert all("severity" not in s for t, s in yaml.safe_load(SHIPPED.read_text()).items() if t not in GATE_SECTIONS)


def test_every_critical_limit_states_its_rule():
    lines = list(_value_lines(SHIPPED.read_text()))
    assert {key for _, key, _ in lines} <= CRITICAL_KEYS | WARNING_KEYS
    critical = [(t, k, line) for t, k, line in lines if k in CRITICAL_KEYS]
    assert len(critical) >= 70  # the parser found the limits
    missing = [line.strip() for t, k, line in critical if not _comment(line).startswith("rule: ")]
    assert missing == []
    # A warning's limit is calibrated, not a rule: it does not pretend to be one.
    assert [line.strip() for t, k, line in lines if k in WARNING_KEYS and "rule:" in line] == []


# Each critical range as the rules of the game set it; None: open (no rule caps it).
PLAYERS_ON_FLOOR = 5
MOST_PLAYERS = 15 + 3  # standard contracts + two-way contracts (2023 CBA); hardship signings replace players who are out
REGULATION_PERIOD_MINUTES = 12
TS_MOST = 3 / 2  # TS = PTS / (2·(FGA + 0.44·FTA)): every attempt a made three; eFG the same
COURT_LENGTH = 94  # feet; 50 wide: no point is farther than √((94 − 5.25)² + 25²) ≈ 92.2 from a hoop
NOT_NEGATIVE = (0, None)
SHARE = (0, 1)
RULE_RANGES: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "schedule": {"home_pts": NOT_NEGATIVE, "away_pts": NOT_NEGATIVE, "num_ot": NOT_NEGATIVE},
    "player_boxscores": {"min": NOT_NEGATIVE, "pts": NOT_NEGATIVE, "fga": NOT_NEGATIVE, "reb": NOT_NEGATIVE,
                         "fg_pct": SHARE},
    "shots": {"period": (1, None), "shot_made": SHARE, "shot_distance": (0, COURT_LENGTH),
              "mins_left": (0, REGULATION_PERIOD_MINUTES), "secs_left": (0, 59)},
    "team_offense_game_summary": {"points": NOT_NEGATIVE, "possessions": NOT_NEGATIVE, "pace": NOT_NEGATIVE,
                                  "offensive_rating": NOT_NEGATIVE, "ts_pct": (0, TS_MOST)},
    "team_defense_game_summary": {"points_allowed": NOT_NEGATIVE, "defensive_rating": NOT_NEGATIVE},
    "player_game_summary": {"minutes": NOT_NEGATIVE, "pts": NOT_NEGATIVE, "usage_rate": (0, 100),
                            "ts_pct": (0, TS_MOST), "efg_pct": (0, TS_MOST)},
    "player_game_context": {"days_rest": NOT_NEGATIVE, "games_last_7_days": (0, 7), "minutes_last_7_days": NOT_NEGATIVE,
                            "games_last_14_days": (0, 14), "games_played_season": NOT_NEGATIVE},
    "team_defense_zone_analysis": {"games_in_window": (1, 15), "paint_fg_pct_allowed": SHARE,
                                   "mid_range_fg_pct_allowed": SHARE, "three_fg_pct_allowed": SHARE,
                                   "paint_vs_league": (-1, 1), "three_vs_league": (-1, 1)},
    "player_shot_zone_analysis": {"games_last_10": (1, 10), "games_last_20": (1, 20), "paint_rate_last_10": SHARE,
                                  "three_rate_last_10": SHARE, "three_fg_pct_last_20": SHARE},
    "player_daily_cache": {"games_played_season": (3, None), "points_avg_last_10": NOT_NEGATIVE,
                           "points_std_last_10": NOT_NEGATIVE, "usage_avg_last_10": (0, 100),
                           "team_pace_last_10": NOT_NEGATIVE},
    "player_composite_factors": {"fatigue_score": (0, 100), "shot_zone_mismatch": (-10, 10),
                                 "pace_adjustment": (-3, 3), "usage_spike": (-3, 3)},
    "ml_feature_store": {"feature_quality_score": SHARE, "actual_points": NOT_NEGATIVE},
    "espn_team_boxscores": {"team_score": NOT_NEGATIVE, "field_goals_attempted": NOT_NEGATIVE},
    "game_quality": {"quality_score": (0, 100)},  # a share of checks, in percent
}  # fmt: skip


def test_the_critical_limits_are_the_rules_of_the_game():
    loaded = all_thresholds()
    ranges = {t: {c: (b.min, b.max) for c, b in th.ranges.items()} for t, th in loaded.items() if th.ranges}
    assert ranges == RULE_RANGES
    per_team_game = {t: (th.rows_per_team_game.min, th.rows_per_team_game.max)
                     for t, th in loaded.items() if th.rows_per_team_game}  # fmt: skip
    assert per_team_game == dict.fromkeys(
        ("player_boxscores", "player_game_summary", "ml_feature_store"), (PLAYERS_ON_FLOOR, MOST_PLAYERS)
    )
    assert {t: th.rows_per_game for t, th in loaded.items() if th.rows_per_game} == {
        "team_offense_game_summary": 2, "team_defense_game_summary": 2,  # two teams a game
        "game_quality": 1,  # one score a game
    }  # fmt: skip
    # The court's farthest point from a hoop (5.25 ft in from the baseline) is inside the limit.
    assert ((COURT_LENGTH - 5.25) ** 2 + 25**2) ** 0.5 <= loaded["shots"].ranges["shot_distance"].max
    # NULLs: none in a critical column (a share above 0 would be a calibrated figure).
    assert {v for th in loaded.values() for v in th.null_rates.values()} <= {0.0}


def test_the_calibrated_limits_live_on_as_warnings():
    loaded = all_thresholds()
    box, schedule = loaded["player_boxscores"], loaded["schedule"]
    assert box.usual_rows_per_team_game.min == 8 and box.usual_ranges["pts"].max == 100
    assert schedule.usual_ranges["home_pts"].model_dump() == {"min": 50, "max": 200}
    assert schedule.max_gap_days == 8


def test_a_band_without_an_end_is_an_error(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "schedule:\n  usual_ranges: {home_pts: {}}\n")
    with pytest.raises(ThresholdsError, match="usual_ranges.home_pts: Value error, a band needs a min or a max"):
        all_thresholds()
    _use(monkeypatch, tmp_path, "schedule:\n  usual_ranges: {home_score: {max: 200}}\n")
    with pytest.raises(ThresholdsError, match=r"usual_ranges: \['home_score'\] not columns"):
        all_thresholds()


def test_the_usual_checks_take_a_severity_by_name(monkeypatch, tmp_path):
    _use(monkeypatch, tmp_path, "player_boxscores:\n  severity: {unusual_values: critical, unusual_rows_per_team_game: info}\n")
    assert all_thresholds()["player_boxscores"].severity == {
        "unusual_values": "critical", "unusual_rows_per_team_game": "info"}
    _use(monkeypatch, tmp_path, "player_boxscores:\n  severity: {usual_values: info}\n")
    with pytest.raises(ThresholdsError, match=r"severity: unknown checks \['usual_values'\]"):
        all_thresholds()
