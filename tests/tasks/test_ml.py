"""tasks/ml.py without Prefect: the chronological split, the quality rule, the baselines (against
an independent pandas computation over the box-score CSV), the metrics on a hand-worked
example, and the gate: it refuses a model trained on a shuffled target and passes the real one
(the feature store of ml_home: the bundled season through 2024-02-15)."""

from __future__ import annotations

import random
import struct
from datetime import date

import numpy as np
import pandas as pd
import pytest

from blocks.settings import reset_settings
from tasks import ml
from engine.thresholds import ModelGate
from tests.conftest import ML_END, ML_START


@pytest.fixture(scope="module")
def store(ml_home) -> pd.DataFrame:
    """The feature store's rows, read through the warehouse as the train task reads them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOPFLOW_HOME", str(ml_home))
        reset_settings()
        rows = ml.feature_rows(ML_START, ML_END)
    reset_settings()
    return rows


@pytest.fixture(scope="module")
def independent(season_csv) -> pd.DataFrame:
    """Per player-game, from player_box.csv.gz alone: his earlier games this season, and his
    points averaged over the last 10 of them and over all of them."""
    box = season_csv["player_box"].sort_values(["PLAYER_ID", "GAME_DATE", "GAME_ID"]).copy()
    points = box.groupby("PLAYER_ID").PTS
    box["games_before"] = points.cumcount()
    box["last_10_csv"] = points.transform(lambda s: s.shift().rolling(10, min_periods=1).mean())
    box["season_csv"] = points.transform(lambda s: s.shift().expanding().mean())
    box["tier_csv"] = pd.cut(box.season_csv, [-np.inf, 5, 15, 25, np.inf], right=False,
                         labels=["under_5", "5_to_14", "15_to_24", "25_plus"]).astype(str)  # fmt: skip
    return box.rename(columns={"GAME_ID": "game_id", "PLAYER_ID": "player_id"})


@pytest.fixture(scope="module")
def trained(store) -> ml.Trained:
    return ml.train_on(store, ML_START, ML_END)


def _gate() -> ModelGate:
    reset_settings()
    return ml.model_gate()


# ---------------------------------------------------------------- the split


def _check_split(split: ml.Split, dates: list[date]) -> None:
    sets = [set(split.train), set(split.validation), set(split.test)]
    assert all(sets), "a set is empty"
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]), "a date in two sets"
    assert sets[0] | sets[1] | sets[2] == set(dates)
    assert max(split.train) < min(split.validation) and max(split.validation) < min(split.test)


def test_the_split_never_shares_a_date_and_trains_only_before_the_test_dates(season_csv):
    dates = sorted(pd.to_datetime(season_csv["schedule"].GAME_DATE.unique()).date)
    rng = random.Random(7)
    for _ in range(200):
        some = sorted(rng.sample(dates, rng.randint(3, len(dates))))
        split = ml.chronological_split(some)
        _check_split(split, some)
        assert len(split.test) == max(1, round(len(some) / 5))  # the last fifth
        test_from = rng.choice(some[2:])
        split = ml.chronological_split(some, test_from)
        _check_split(split, some)
        assert split.test == tuple(d for d in some if d >= test_from)

    split = ml.chronological_split(dates, date(2024, 2, 1))
    assert split.test[0] == date(2024, 2, 1) and split.validation[-1] < date(2024, 2, 1)
    assert len(split.validation) == round(len([d for d in dates if d < date(2024, 2, 1)]) * 0.15)


def test_a_split_that_cannot_make_three_sets_is_refused():
    days = [date(2024, 1, d) for d in range(1, 11)]
    with pytest.raises(ml.SplitError, match="no feature-store date on or after the test start 2024-02-01"):
        ml.chronological_split(days, date(2024, 2, 1))
    with pytest.raises(ml.SplitError, match="1 feature-store dates before the test dates"):
        ml.chronological_split(days, date(2024, 1, 2))


def test_training_never_reads_a_test_target(store, trained):
    """The test rows' actual points replaced by nonsense: the same model, the same predictions."""
    test_dates = set(trained.report.split.test)
    spoiled = store.assign(actual_points=np.where(store.game_date.isin(test_dates), 99, store.actual_points))
    again = ml.train_on(spoiled, ML_START, ML_END)
    test = store[store.game_date.isin(test_dates) & ml.passes_quality(store)]
    np.testing.assert_array_equal(again.model.predict(test), trained.model.predict(test))
    # and predictions never read the target
    np.testing.assert_array_equal(trained.model.predict(test.drop(columns="actual_points")), trained.model.predict(test))


# ---------------------------------------------------------------- quality rule, baselines


def test_the_quality_rule_drops_exactly_the_players_without_three_earlier_games(store, independent):
    rows = store.merge(independent[["game_id", "player_id", "games_before"]], on=["game_id", "player_id"])
    assert len(rows) == len(store)
    dropped = ~ml.passes_quality(rows)
    assert dropped.any()
    assert (dropped == (rows.games_before < 3)).all()
    assert not ml.passes_quality(store.assign(feature_version="v0")).any()  # another version


def test_the_baselines_equal_a_pandas_computation_over_the_raw_csv(store, independent):
    kept = store[ml.passes_quality(store)]
    ours = pd.concat([kept[["game_id", "player_id"]], ml.baselines(kept).set_index(kept.index)], axis=1)
    ours["tier"] = ml.scorer_tier(kept.points_avg_season)
    both = ours.merge(independent, on=["game_id", "player_id"])
    assert len(both) == len(kept) > 10_000
    np.testing.assert_allclose(both.last_10, both.last_10_csv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(both.season, both.season_csv, rtol=0, atol=1e-9)
    assert (both.tier == both.tier_csv).all()


def test_the_reported_baseline_errors_are_the_csvs(store, independent, trained):
    """The baselines' metrics on the test rows are the CSV's errors on exactly those rows."""
    test = trained.report.split.part(store[ml.passes_quality(store)], "test")
    rows = test.merge(independent, on=["game_id", "player_id"])
    assert len(rows) == trained.report.rows["test"] == trained.report.metrics["last_10"].rows
    for name in ("last_10", "season"):
        error = rows[f"{name}_csv"] - rows.PTS
        m = trained.report.metrics[name]
        assert m.mae == pytest.approx(error.abs().mean(), abs=1e-9)
        assert m.bias == pytest.approx(error.mean(), abs=1e-9)
        for tier in ("25_plus", "15_to_24", "5_to_14", "under_5"):
            assert m.tiers[tier].rows == (rows.tier_csv == tier).sum()
            assert m.tiers[tier].bias == pytest.approx(error[rows.tier_csv == tier].mean(), abs=1e-9)


# ---------------------------------------------------------------- metrics


def test_metrics_on_a_hand_worked_example():
    actual = [10, 20, 30, 2, 7]
    predicted = [12, 17, 30, 8, 7.5]
    season_average = pd.Series([26.0, 16.0, 15.0, 4.99, 5.0])
    tier = ml.scorer_tier(season_average)
    assert list(tier) == ["25_plus", "15_to_24", "15_to_24", "under_5", "5_to_14"]
    m = ml.error_metrics(actual, predicted, tier)
    # errors: +2, −3, 0, +6, +0.5
    assert m.rows == 5
    assert m.mae == pytest.approx(11.5 / 5)
    assert m.rmse == pytest.approx(np.sqrt((4 + 9 + 0 + 36 + 0.25) / 5))
    assert m.within_3 == pytest.approx(4 / 5)  # |−3| ≤ 3 counts
    assert m.within_5 == pytest.approx(4 / 5)
    assert m.bias == pytest.approx(5.5 / 5)
    assert m.tiers["25_plus"] == ml.TierMetrics(1, 2.0, 2.0)
    assert m.tiers["15_to_24"] == ml.TierMetrics(2, 1.5, -1.5)
    assert m.tiers["5_to_14"] == ml.TierMetrics(1, 0.5, 0.5)
    assert m.tiers["under_5"] == ml.TierMetrics(1, 6.0, 6.0)
    empty_tier = ml.error_metrics([1], [2], ["under_5"]).tiers["25_plus"]
    assert empty_tier == ml.TierMetrics(0, None, None)


# ---------------------------------------------------------------- the gate


def _metrics(mae: float, biases: dict[str, tuple[int, float]] | None = None) -> ml.Metrics:
    tiers = {}
    for t, _, _ in ml.TIERS:
        rows, bias = (biases or {}).get(t, (500, 0.0))
        tiers[t] = ml.TierMetrics(rows, mae, bias)
    return ml.Metrics(rows=2000, mae=mae, rmse=mae * 1.3, within_3=0.4, within_5=0.6, bias=0.0, tiers=tiers)


def test_the_gate_on_hand_made_numbers():
    gate = ModelGate(min_mae_margin=0.05, max_tier_bias={"25_plus": 2.0, "under_5": 1.0}, min_tier_rows=100,
                     min_train_rows=1000, min_test_rows=500)  # fmt: skip
    rows = {"train": 5000, "validation": 800, "test": 2000, "dropped": 10}
    base = {"last_10": _metrics(4.60), "season": _metrics(4.70)}

    ok = ml.judge({"model": _metrics(4.54), **base}, rows, gate)
    assert ok.passed and ok.best_baseline == "last_10" and ok.gain == pytest.approx(0.06)

    short = ml.judge({"model": _metrics(4.56), **base}, rows, gate)
    assert not short.passed
    assert short.reasons == ("test MAE 4.560 is not 0.05 below the best baseline (last-10 average 4.600): gain +0.040",)

    biased = ml.judge({"model": _metrics(4.40, {"25_plus": (120, -2.3), "under_5": (99, 3.0)}), **base}, rows, gate)
    assert biased.reasons == ("tier 25+ bias -2.30 beyond ±2 (120 rows)",)  # 99 rows: not judged

    few = ml.judge({"model": _metrics(4.40), **base}, {**rows, "train": 999, "test": 499}, gate)
    assert few.reasons == ("999 training rows < 1,000", "499 test rows < 500")


def test_the_gate_refuses_a_model_trained_on_a_shuffled_target_and_passes_the_real_one(store, trained):
    gate = _gate()
    report = trained.report
    decision = ml.judge(report.metrics, report.rows, gate)
    assert decision.passed, decision.reasons
    assert report.metrics["model"].mae < min(report.metrics["last_10"].mae, report.metrics["season"].mae) - gate.min_mae_margin

    # the training and validation dates' points shuffled across rows; the test dates kept real
    first_test = report.split.test[0]
    before = store.game_date < first_test
    shuffled = store.copy()
    shuffled.loc[before, "actual_points"] = np.random.default_rng(0).permutation(store.actual_points[before].to_numpy())
    noise = ml.train_on(shuffled, ML_START, ML_END, test_from=first_test)
    assert noise.report.metrics["last_10"] == report.metrics["last_10"]  # judged on the same rows
    refused = ml.judge(noise.report.metrics, noise.report.rows, gate)
    assert not refused.passed
    assert any("is not 0.03 below the best baseline" in r for r in refused.reasons)
    assert noise.report.metrics["model"].mae > report.metrics["last_10"].mae + 1  # it learnt nothing


# ---------------------------------------------------------------- files, plot, rows


def test_the_model_file_round_trips_and_the_plot_is_a_small_png(store, trained):
    test = trained.report.split.part(store[ml.passes_quality(store)], "test")
    loaded = ml.model_from_bytes(ml.model_bytes(trained.model))
    np.testing.assert_array_equal(loaded.predict(test), trained.model.predict(test))
    png = trained.plot
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (800, 400)
    assert len(png) < 200_000
    importance = trained.report.importance
    assert set(importance) == set(ml.MODEL_FEATURES)
    assert max(importance, key=importance.get) in ml.REQUIRED_FEATURES  # the scoring history leads


def test_prediction_and_grading_rows(store, trained):
    day = store[store.game_date == trained.report.split.test[0]]
    now = pd.Timestamp("2024-06-01", tz="UTC")
    predictions = ml.prediction_rows(day, trained.model, "v-test", now)
    kept = day[ml.passes_quality(day)]
    assert len(predictions) == len(kept)
    np.testing.assert_array_equal(predictions.predicted_points, trained.model.predict(kept))
    box = day[["game_id", "player_id"]].assign(pts=day.actual_points).iloc[1:]  # one player missing
    graded = ml.grading_rows(predictions, box, now)
    assert len(graded) == len(predictions) - (day.player_id.iloc[0] in set(predictions.player_id))
    assert (graded.error == graded.predicted_points - graded.actual_points).all()
    assert (graded.within_5 == (graded.absolute_error <= 5)).all()


# ---------------------------------------------------------------- reconciliation


def test_games_with_a_critical_finding_are_left_out_of_training(store, trained):
    games = sorted(store.game_id.unique())[::40]  # a spread of games, as if each had a critical finding
    again = ml.train_on(store.assign(critical_game=store.game_id.isin(games)), ML_START, ML_END)
    usable = ml.passes_quality(store) & store.actual_points.notna()
    expected = int((usable & store.game_id.isin(games)).sum())
    assert expected > 100 and again.report.rows["reconcile_excluded"] == expected
    used = ("train", "validation", "test")
    assert sum(again.report.rows[k] for k in used) == sum(trained.report.rows[k] for k in used) - expected
    assert again.report.rows["dropped"] == trained.report.rows["dropped"]  # the quality rule's count is its own
    assert trained.report.rows["reconcile_excluded"] == 0
    assert f"{expected:,} left out for a critical reconciliation finding" in again.report.to_text()


def test_critical_games_are_the_open_critical_findings_only(hoopflow_home):
    from blocks.settings import get_settings
    from tasks.reconcile import DISCREPANCIES

    wh = get_settings().warehouse_block()
    wh.ensure_tables([DISCREPANCIES])
    now = pd.Timestamp("2024-01-16T06:00:00Z")
    rows = [("0022300600", "critical", "open"), ("0022300601", "warning", "open"), ("0022300602", "critical", "resolved"),
            (None, "critical", "open")]  # the last: an ESPN game NBA.com does not have  # fmt: skip
    frame = pd.DataFrame([{"finding_key": f"k{i}", "game_date": date(2024, 1, 15), "game_id": g, "entity": "game",
                           "rule": "provider_game", "field": "game_id", "severity": sev, "status": status,
                           "first_seen_at": now, "last_seen_at": now} for i, (g, sev, status) in enumerate(rows)])  # fmt: skip
    wh.replace_partition(DISCREPANCIES, date(2024, 1, 15), frame.reindex(columns=[c for c, _ in DISCREPANCIES.columns]))
    assert ml.critical_games(date(2024, 1, 1), date(2024, 1, 31)) == {"0022300600"}
    assert ml.critical_games(date(2024, 2, 1), date(2024, 2, 28)) == set()
