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
            if isinstance(value, dict) and key in ("ranges", "rows_per_team_game"):
                continue  # typed models, checked below
            if isinstance(value, dict) and key != "null_rates" and key != "identities":
                got = got.model_dump(exclude_unset=True)
                value = {k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items()}
            assert got == value, (table, key)
    # Two tables with the same key keep their own values (the old reader did not).
    assert loaded["player_boxscores"].ranges["pts"].max == 100
    assert loaded["schedule"].ranges["home_pts"].max == 200
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
