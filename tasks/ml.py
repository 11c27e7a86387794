"""The ML phase: a points model trained on the feature store, judged against honest baselines
on later dates, registered only through a gate; then predictions and their grades.

  train    ml_feature_store rows that pass the quality rule → dates split train < validation
           < test → gradient boosting (early stopping on the validation dates) → test metrics
           next to the last-10 and season-average baselines on the same rows → gate → register
  predict  a date's feature-store rows → the latest registered model → nba_predictions.predictions
  grade    a date's predictions against its box score → nba_predictions.grading

The formulas are plain functions over frames shaped like the feature store, so a test calls
them without Prefect; the tasks read and write through the settings' warehouse and landing
zone (a local folder, or a GCS bucket in production)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any

import joblib
import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance

from blocks.warehouse import TableSpec
from blocks.settings import get_settings
from tasks.analytics import MissingInputError
from engine.policies import module_code_version
from engine.ledger import RUN_LEDGER, write_partition
from tasks.precompute import FEATURE_VERSION, FEATURES, ML_FEATURE_STORE, precompute_processable
from tasks.raw import RAW_PLAYER_BOXSCORES
from engine.thresholds import ModelGate, load_gate

# ---------------------------------------------------------------- the quality rule

# A row is trained on, evaluated and predicted only when none of these was defaulted. They are
# the player's own scoring and minutes history (player_daily_cache), and they are defaulted
# together exactly when he has fewer than 3 earlier games this season: the stored value is then
# the date's median player, so the baselines would compare the model with a made-up history and
# his scorer tier would be unknown (2023-24: 480 of 24,145 rows, 2.0 %). The other defaults mean
# "not applicable" and stay: a zone FG% without attempts in the zone, TS% without a shot, the
# volatility of a 0-point average, the rest before a player's first game.
REQUIRED_FEATURES = (
    "points_avg_last_5",
    "points_avg_last_10",
    "points_avg_season",
    "points_std_last_10",
    "minutes_avg_last_10",
    "games_played_season",
)
MODEL_FEATURES = tuple(f.name for f in FEATURES)
TARGET = "actual_points"


def passes_quality(rows: pd.DataFrame) -> pd.Series:
    """True for rows of the current feature version whose required features are all real."""
    ok = rows.feature_version == FEATURE_VERSION
    for name in REQUIRED_FEATURES:
        ok &= (rows[f"{name}_source"] != "default") & rows[name].notna()
    return ok.astype(bool)


# ---------------------------------------------------------------- the chronological split

TEST_SHARE = 0.2  # without test_from: the last fifth of the dates
VALIDATION_SHARE = 0.15  # of the dates before the test dates: the latest ones


class SplitError(ValueError):
    """The range's dates cannot make three non-empty sets."""


@dataclass(frozen=True)
class Split:
    """Dates in three sets, each later than the one before: every training date precedes every
    validation date, which precedes every test date."""

    train: tuple[date, ...]
    validation: tuple[date, ...]
    test: tuple[date, ...]

    def part(self, rows: pd.DataFrame, name: str) -> pd.DataFrame:
        return rows[rows.game_date.isin(set(getattr(self, name)))]

    def ranges(self) -> dict[str, str]:
        return {n: f"{d[0]} → {d[-1]} ({len(d)} dates)"
                for n, d in (("train", self.train), ("validation", self.validation), ("test", self.test))}  # fmt: skip


def chronological_split(dates: list[date], test_from: date | None = None) -> Split:
    """Test: the dates from `test_from` on (without it, the last fifth); validation: the latest
    15 % of the dates before them; train: the rest. No date is in two sets."""
    dates = sorted(set(dates))
    if test_from is None:
        test = dates[len(dates) - max(1, round(len(dates) * TEST_SHARE)) :]
    else:
        test = [d for d in dates if d >= test_from]
    if not test:
        raise SplitError(f"no feature-store date on or after the test start {test_from}")
    before = [d for d in dates if d < test[0]]
    n_validation = max(1, round(len(before) * VALIDATION_SHARE))
    if len(before) < n_validation + 1:
        raise SplitError(
            f"{len(before)} feature-store dates before the test dates ({test[0]} on): need at least "
            "2 (one to train on, one to validate on)"
        )
    return Split(tuple(before[:-n_validation]), tuple(before[-n_validation:]), tuple(test))


# ---------------------------------------------------------------- the model


def scoring_level(rows: pd.DataFrame) -> np.ndarray:
    """The player's recent scoring level: the mean of his last-5, last-10 and season averages."""
    return rows[["points_avg_last_5", "points_avg_last_10", "points_avg_season"]].mean(axis=1).to_numpy()


# squared_error: the model predicts a mean, so its mean error per scorer tier (which the gate
# judges) stays near 0; absolute_error would predict medians, below the mean for most players.
# Small trees, a slow rate and 80-row leaves: a few thousand rows of a noisy target.
REGRESSOR_PARAMS: dict[str, Any] = dict(
    loss="squared_error", learning_rate=0.03, max_leaf_nodes=7, min_samples_leaf=80,
    l2_regularization=1.0, max_iter=3000, early_stopping=True, n_iter_no_change=30, random_state=0,
)  # fmt: skip


class PointsModel(RegressorMixin, BaseEstimator):
    """actual_points ≈ the player's scoring level + a boosted correction from all 33 features.
    Anchored, the trees only learn what moves a player off his level (minutes, opponent, rest,
    form), and early stopping keeps what holds on later dates. From scratch they need far more
    rows to match the players' own averages: on 2023-24, tested 2024-01-01 → 02-15 after
    training on the dates before, the MAE gain over the best baseline was −0.008 from scratch
    and +0.021 anchored; tested 2024-02-01 → 04-14, +0.066 and +0.087."""

    def __init__(self, features: tuple[str, ...] = MODEL_FEATURES, feature_version: str = FEATURE_VERSION):
        self.features = features
        self.feature_version = feature_version

    def fit(self, rows: pd.DataFrame, y: Any, validation: pd.DataFrame, y_validation: Any) -> PointsModel:
        """Boosting stops once 30 rounds bring no gain on the validation rows (never the test
        rows). Deterministic: fixed random_state."""
        self.regressor_ = HistGradientBoostingRegressor(**REGRESSOR_PARAMS).fit(
            rows[list(self.features)], np.asarray(y, dtype="float64") - scoring_level(rows),
            X_val=validation[list(self.features)],
            y_val=np.asarray(y_validation, dtype="float64") - scoring_level(validation),
        )  # fmt: skip
        return self

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return scoring_level(rows) + self.regressor_.predict(rows[list(self.features)])


def fit_points_model(train: pd.DataFrame, validation: pd.DataFrame) -> PointsModel:
    """Fit on the training rows, stop early on the validation rows."""
    return PointsModel().fit(train, train[TARGET], validation, validation[TARGET])


def feature_importance(model: PointsModel, rows: pd.DataFrame, repeats: int = 5) -> dict[str, float]:
    """Permutation importance: how much the MAE on `rows` (the validation dates) grows when one
    feature's values are shuffled, in points, largest first (HistGradientBoosting has no
    built-in importances)."""
    found = permutation_importance(
        model, rows[list(model.features)], rows[TARGET], scoring="neg_mean_absolute_error",
        n_repeats=repeats, random_state=0,
    )
    pairs = sorted(zip(model.features, found.importances_mean, strict=True), key=lambda p: -p[1])
    return {name: round(float(v), 4) for name, v in pairs}


def model_bytes(model: PointsModel) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def model_from_bytes(data: bytes) -> PointsModel:
    # A pickle: load only files this project wrote to its own landing zone.
    return joblib.load(io.BytesIO(data))


# ---------------------------------------------------------------- baselines, tiers, metrics

# Scorer tier: the player's season average before the date (id, label, lowest average).
TIERS: tuple[tuple[str, str, float], ...] = (
    ("25_plus", "25+", 25.0),
    ("15_to_24", "15–24", 15.0),
    ("5_to_14", "5–14", 5.0),
    ("under_5", "< 5", -math.inf),
)
TIER_LABELS = {tier: label for tier, label, _ in TIERS}
BASELINES = {"last_10": "points_avg_last_10", "season": "points_avg_season"}
LABELS = {"model": "model", "last_10": "last-10 average", "season": "season average"}


def scorer_tier(season_average: pd.Series) -> pd.Series:
    s = season_average.astype("float64")
    return pd.Series(
        np.select([s >= low for _, _, low in TIERS[:-1]], [t for t, _, _ in TIERS[:-1]], TIERS[-1][0]),
        index=season_average.index,
    )


def baselines(rows: pd.DataFrame) -> pd.DataFrame:
    """Each row's two baselines: the player's points averaged over his last 10 games and over
    the season, strictly before the date (the feature store's daily-cache windows; real,
    never defaulted, on rows that pass the quality rule)."""
    return pd.DataFrame({name: rows[column].astype("float64") for name, column in BASELINES.items()})


@dataclass(frozen=True)
class TierMetrics:
    rows: int
    mae: float | None
    bias: float | None


@dataclass(frozen=True)
class Metrics:
    """Errors of predictions against actual points (bias = mean of predicted − actual)."""

    rows: int
    mae: float
    rmse: float
    within_3: float  # share with |error| ≤ 3 points
    within_5: float
    bias: float
    tiers: dict[str, TierMetrics]


def error_metrics(actual: Any, predicted: Any, tier: Any) -> Metrics:
    actual = np.asarray(actual, dtype="float64")
    error = np.asarray(predicted, dtype="float64") - actual
    tier = np.asarray(tier)
    if not len(error):
        raise ValueError("no rows to measure")
    tiers = {}
    for t, _, _ in TIERS:
        e = error[tier == t]
        tiers[t] = TierMetrics(len(e), float(np.mean(np.abs(e))) if len(e) else None, float(e.mean()) if len(e) else None)
    return Metrics(
        rows=len(error), mae=float(np.mean(np.abs(error))), rmse=float(np.sqrt(np.mean(error**2))),
        within_3=float(np.mean(np.abs(error) <= 3)), within_5=float(np.mean(np.abs(error) <= 5)),
        bias=float(error.mean()), tiers=tiers,
    )  # fmt: skip


def evaluate(rows: pd.DataFrame, predicted: Any) -> dict[str, Metrics]:
    """The model's metrics and both baselines' on exactly the same rows."""
    tier = scorer_tier(rows.points_avg_season)
    out = {"model": error_metrics(rows[TARGET], predicted, tier)}
    for name, values in baselines(rows).items():
        out[name] = error_metrics(rows[TARGET], values, tier)
    return out


# ---------------------------------------------------------------- the gate


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    best_baseline: str
    gain: float  # best baseline's MAE − the model's (points; positive: the model is better)
    reasons: tuple[str, ...] = ()  # why it was refused


def judge(metrics: dict[str, Metrics], rows: dict[str, int], gate: ModelGate) -> GateDecision:
    """Register only a model whose test MAE is at least the margin below the best baseline's and
    whose mean error in every tier with enough test rows stays within the tier's limit."""
    model = metrics["model"]
    best = min(BASELINES, key=lambda b: metrics[b].mae)
    gain = metrics[best].mae - model.mae
    reasons = []
    if rows["train"] < gate.min_train_rows:
        reasons.append(f"{rows['train']:,} training rows < {gate.min_train_rows:,}")
    if rows["test"] < gate.min_test_rows:
        reasons.append(f"{rows['test']:,} test rows < {gate.min_test_rows:,}")
    if gain < gate.min_mae_margin:
        reasons.append(
            f"test MAE {model.mae:.3f} is not {gate.min_mae_margin:g} below the best baseline "
            f"({LABELS[best]} {metrics[best].mae:.3f}): gain {gain:+.3f}"
        )
    for tier, limit in gate.max_tier_bias.items():
        t = model.tiers[tier]
        if t.rows >= gate.min_tier_rows and t.bias is not None and abs(t.bias) > limit:
            reasons.append(f"tier {TIER_LABELS[tier]} bias {t.bias:+.2f} beyond ±{limit:g} ({t.rows} rows)")
    return GateDecision(not reasons, best, float(gain), tuple(reasons))


def model_gate() -> ModelGate:
    """The `models` section of the thresholds file, with settings overrides."""
    settings = get_settings()
    return load_gate(settings.thresholds_file, settings.thresholds, "models")


# ---------------------------------------------------------------- the training report


@dataclass
class TrainingReport:
    """What a training run found; `version` and the URIs are set once it is registered."""

    start: date
    end: date
    feature_version: str
    split: Split
    rows: dict[str, int]  # train, validation, test (after the quality rule), dropped, reconcile_excluded
    metrics: dict[str, Metrics]  # model, last_10, season: on the test rows
    importance: dict[str, float]
    iterations: int
    seconds: float  # fitting, early stopping included
    decision: GateDecision | None = None
    version: str | None = None
    model_uri: str | None = None
    plot_uri: str | None = None
    registered_at: datetime | None = None
    params: dict[str, Any] = field(default_factory=lambda: dict(REGRESSOR_PARAMS))

    def headline(self) -> str:
        m, d = self.metrics, self.decision
        best = d.best_baseline if d else min(BASELINES, key=lambda b: m[b].mae)
        verdict = ("not judged" if d is None else "REFUSED" if not d.passed
                   else f"registered {self.version}" if self.version else "passed the gate")  # fmt: skip
        return (
            f"model {verdict}: test MAE {m['model'].mae:.3f} vs last-10 average {m['last_10'].mae:.3f}, "
            f"season average {m['season'].mae:.3f} (gain {m[best].mae - m['model'].mae:+.3f} over the best) "
            f"on {self.rows['test']:,} test rows, {self.split.test[0]} → {self.split.test[-1]}"
        )

    def summary(self) -> str:
        reasons = "; ".join(self.decision.reasons) if self.decision else ""
        return self.headline() + (f": {reasons}" if reasons else "")

    def metric_rows(self) -> list[dict[str, Any]]:
        """One row per predictor (the table artifact, the CLI)."""
        out = []
        for name in ("model", *BASELINES):
            m = self.metrics[name]
            row = {"predictor": LABELS[name], "rows": m.rows, "MAE": round(m.mae, 3), "RMSE": round(m.rmse, 3),
                   "within 3": round(m.within_3, 3), "within 5": round(m.within_5, 3), "bias": round(m.bias, 3)}  # fmt: skip
            for tier, label, _ in TIERS:
                t = m.tiers[tier]
                row[f"MAE {label}"] = _r(t.mae, 2)
                row[f"bias {label}"] = _r(t.bias, 2)
            out.append(row)
        return out

    def to_text(self) -> str:
        lines = [self.summary(), ""]
        lines += [f"  {n:<10} {r}" for n, r in self.split.ranges().items()]
        lines.append(f"  rows: {self.rows['train']:,} train, {self.rows['validation']:,} validation, "
                     f"{self.rows['test']:,} test; {self.rows['dropped']:,} dropped by the quality rule, "
                     f"{self.rows.get('reconcile_excluded', 0):,} left out for a critical reconciliation finding")  # fmt: skip
        lines.append(f"  {self.iterations} boosting rounds, {self.seconds:.1f} s")
        lines += ["", f"  {'':<16}{'MAE':>7}{'RMSE':>7}{'≤3':>7}{'≤5':>7}{'bias':>7}   MAE (bias) by season average"]
        lines.append(f"  {'':<51}" + "".join(f"{label:>16}" for _, label, _ in TIERS))
        for name in ("model", *BASELINES):
            m = self.metrics[name]
            tiers = "".join(
                f"{_fmt(m.tiers[t].mae, '.2f'):>7} ({_fmt(m.tiers[t].bias, '+.2f')})".rjust(16) for t, _, _ in TIERS
            )
            lines.append(f"  {LABELS[name]:<16}{m.mae:7.3f}{m.rmse:7.3f}{m.within_3:7.3f}{m.within_5:7.3f}"
                         f"{m.bias:+7.2f}   {tiers}")  # fmt: skip
        lines.append(f"  {'test rows':<51}" + "".join(f"{self.metrics['model'].tiers[t].rows:>16,}" for t, _, _ in TIERS))
        if self.model_uri:
            lines += ["", f"  model: {self.model_uri}", f"  plot:  {self.plot_uri}"]
        return "\n".join(lines)

    def to_markdown(self, png: bytes | None = None) -> str:
        d = self.decision
        icon = "✅" if d and d.passed else "❌"
        lines = [f"# {icon} points model {self.start} → {self.end}", "", self.summary(), ""]
        if d and not d.passed:
            lines += ["**Refused by the gate:**", "", *(f"- {r}" for r in d.reasons), ""]
        lines += ["| predictor | rows | MAE | RMSE | within 3 | within 5 | bias |", "|---|---|---|---|---|---|---|"]
        for name in ("model", *BASELINES):
            m = self.metrics[name]
            bold = "**" if name == "model" else ""
            lines.append(f"| {bold}{LABELS[name]}{bold} | {m.rows:,} | {bold}{m.mae:.3f}{bold} | {m.rmse:.3f} "
                         f"| {m.within_3:.1%} | {m.within_5:.1%} | {m.bias:+.2f} |")  # fmt: skip
        lines += ["", "By scorer tier (season average before the date): MAE, and bias in brackets", "",
                  "| tier | test rows | model | last-10 average | season average |", "|---|---|---|---|---|"]  # fmt: skip
        for tier, label, _ in TIERS:
            cells = [f"{_fmt(self.metrics[n].tiers[tier].mae, '.2f')} ({_fmt(self.metrics[n].tiers[tier].bias, '+.2f')})"
                     for n in ("model", *BASELINES)]  # fmt: skip
            lines.append(f"| {label} | {self.metrics['model'].tiers[tier].rows:,} | " + " | ".join(cells) + " |")
        if png:
            lines += ["", f"![predicted vs actual, error by tier](data:image/png;base64,{base64.b64encode(png).decode()})"]
        lines += ["", "| set | dates |", "|---|---|", *(f"| {n} | {r} |" for n, r in self.split.ranges().items())]
        lines += ["", f"Rows: {self.rows['train']:,} train, {self.rows['validation']:,} validation, {self.rows['test']:,} "
                  f"test; {self.rows['dropped']:,} dropped by the quality rule (a required feature defaulted); "
                  f"{self.rows.get('reconcile_excluded', 0):,} left out because their game has an open critical "
                  "reconciliation finding. "
                  f"{self.iterations} boosting rounds in {self.seconds:.1f} s. Feature version {self.feature_version}."]  # fmt: skip
        top = list(self.importance.items())[:10]
        lines += ["", "Permutation importance on the validation dates (MAE increase, points):", "",
                  "| feature | importance |", "|---|---|", *(f"| {k} | {v:+.3f} |" for k, v in top)]  # fmt: skip
        if self.model_uri:
            lines += ["", f"Model `{self.version}`: {self.model_uri}", "", f"Plot: {self.plot_uri}"]
        return "\n".join(lines)


def _r(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


class ModelRejected(RuntimeError):
    """The gate refused the model; the report (with the numbers) travels with the exception."""

    def __init__(self, report: TrainingReport):
        super().__init__(report.summary())
        self.report = report

    def __reduce__(self):  # results are pickled: rebuild from the report, not the message
        return (ModelRejected, (self.report,))


# ---------------------------------------------------------------- the plot


def render_plot(actual: Any, predicted: Any, metrics: dict[str, Metrics]) -> bytes:
    """A PNG (800×400): predicted vs actual points on the test rows, and MAE by scorer tier for
    the model and both baselines (bias printed on each bar). Agg canvas: no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=80)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    actual, predicted = np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
    top = max(10.0, float(np.percentile(np.r_[actual, predicted], 99.9)))
    left.hexbin(actual, predicted, gridsize=35, extent=(0, top, 0, top), bins="log", cmap="Blues", mincnt=1)
    left.plot([0, top], [0, top], color="black", lw=0.8)
    left.set(xlabel="actual points", ylabel="predicted points", xlim=(0, top), ylim=(0, top),
             title=f"test rows: MAE {metrics['model'].mae:.2f}")  # fmt: skip
    width, x = 0.27, np.arange(len(TIERS))
    for i, name in enumerate(("model", *BASELINES)):
        mae = [metrics[name].tiers[t].mae or 0.0 for t, _, _ in TIERS]
        bars = right.bar(x + (i - 1) * width, mae, width, label=f"{LABELS[name]} ({metrics[name].mae:.2f})")
        for bar, (t, _, _) in zip(bars, TIERS, strict=True):
            bias = metrics[name].tiers[t].bias
            if bias is not None:
                right.annotate(f"{bias:+.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                               ha="center", va="bottom", fontsize=7)  # fmt: skip
    right.set_xticks(x, [f"{label}\n({metrics['model'].tiers[t].rows:,})" for t, label, _ in TIERS])
    right.set(xlabel="season average before the date (test rows)", ylabel="MAE (points); bias on the bars",
              title="error by scorer tier")  # fmt: skip
    right.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


# ---------------------------------------------------------------- tables

_KEY = (("game_date", "DATE"), ("season", "STRING"), ("game_id", "STRING"), ("player_id", "INT64"))

MODELS = TableSpec(
    dataset="nba_predictions",
    name="models",
    columns=(
        ("model_version", "STRING"), ("feature_version", "STRING"), ("model_kind", "STRING"),
        ("params", "STRING"), ("features", "STRING"),
        ("train_start", "DATE"), ("train_end", "DATE"), ("validation_start", "DATE"),
        ("validation_end", "DATE"), ("test_start", "DATE"), ("test_end", "DATE"),
        ("train_rows", "INT64"), ("validation_rows", "INT64"), ("test_rows", "INT64"),
        ("dropped_rows", "INT64"), ("reconcile_excluded_rows", "INT64"), ("iterations", "INT64"), ("train_seconds", "FLOAT64"),
        ("test_mae", "FLOAT64"), ("test_rmse", "FLOAT64"), ("baseline_last_10_mae", "FLOAT64"),
        ("baseline_season_mae", "FLOAT64"),
        ("metrics", "STRING"), ("feature_importance", "STRING"),  # JSON
        ("model_path", "STRING"), ("model_uri", "STRING"), ("plot_uri", "STRING"),
        ("code_version", "STRING"), ("flow_run_id", "STRING"), ("registered_at", "TIMESTAMP"),
    ),
    partition_by=None,  # a few rows, appended: one per registered model
    cluster_by=("feature_version",),
    key=("model_version",),
    required=("model_version", "feature_version", "model_path", "test_mae", "registered_at"),
    description="One row per registered points model: its data, metrics next to the baselines, where it is.",
)  # fmt: skip

PREDICTIONS = TableSpec(
    dataset="nba_predictions",
    name="predictions",
    columns=(
        *_KEY, ("team_id", "INT64"), ("opponent_team_id", "INT64"), ("model_version", "STRING"),
        ("feature_version", "STRING"), ("predicted_points", "FLOAT64"),
        ("baseline_last_10", "FLOAT64"), ("baseline_season", "FLOAT64"), ("scorer_tier", "STRING"),
        ("feature_quality_score", "FLOAT64"), ("predicted_at", "TIMESTAMP"),
    ),
    cluster_by=("player_id",),
    key=("game_date", "player_id"),
    required=("game_date", "player_id", "model_version", "predicted_points", "predicted_at"),
    description="Points predicted for each player of game_date's feature store that passes the quality rule.",
)  # fmt: skip

GRADING = TableSpec(
    dataset="nba_predictions",
    name="grading",
    columns=(
        *_KEY, ("team_id", "INT64"), ("model_version", "STRING"), ("predicted_points", "FLOAT64"),
        ("actual_points", "INT64"), ("error", "FLOAT64"), ("absolute_error", "FLOAT64"),
        ("within_3", "BOOL"), ("within_5", "BOOL"), ("baseline_last_10", "FLOAT64"),
        ("baseline_season", "FLOAT64"), ("scorer_tier", "STRING"), ("graded_at", "TIMESTAMP"),
    ),
    cluster_by=("player_id",),
    key=("game_date", "player_id"),
    required=("game_date", "player_id", "model_version", "predicted_points", "actual_points", "graded_at"),
    description="Each prediction of game_date against the box score: error = predicted − actual.",
)  # fmt: skip

ML_TABLES = (MODELS, PREDICTIONS, GRADING)


def ensure_ml_tables() -> None:
    get_settings().warehouse_block().ensure_tables([*ML_TABLES, RUN_LEDGER])


# ---------------------------------------------------------------- reading


def feature_rows(start: date, end: date) -> pd.DataFrame:
    """The feature store's rows of the current feature version in [start, end]."""
    rows = get_settings().warehouse_block().query(
        f"SELECT * FROM {ML_FEATURE_STORE.id} WHERE game_date BETWEEN @start AND @end "
        "AND feature_version = @version ORDER BY game_date, game_id, player_id",
        {"start": start, "end": end, "version": FEATURE_VERSION},
    )  # fmt: skip
    rows["game_date"] = pd.to_datetime(rows.game_date).dt.date
    return rows


def critical_games(start: date, end: date) -> set[str]:
    """The games of [start, end] with an open critical reconciliation finding (a points
    disagreement, a team or game missing from a feed): their rows are left out of training."""
    from tasks.reconcile import DISCREPANCIES

    wh = get_settings().warehouse_block()
    if not wh.has_table(DISCREPANCIES):
        return set()
    found = wh.query(
        f"SELECT DISTINCT game_id FROM {DISCREPANCIES.id} WHERE game_date BETWEEN @start AND @end "
        "AND status = 'open' AND severity = 'critical' AND game_id IS NOT NULL",
        {"start": start, "end": end},
    )  # fmt: skip
    return set(found.game_id)


def ml_dates(start: date, end: date) -> list[date]:
    """The game dates in [start, end] that have a feature store (not a season's first 14 days)."""
    return precompute_processable(get_settings().source_block().game_dates(start, end))


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    feature_version: str
    model_path: str  # in the landing zone
    test_start: date
    test_end: date


def _latest_row(feature_version: str) -> pd.Series | None:
    """The newest `nba_predictions.models` row of the feature version, or None."""
    found = get_settings().warehouse_block().query(
        f"SELECT * FROM {MODELS.id} WHERE feature_version = @version "
        "ORDER BY registered_at DESC, model_version DESC LIMIT 1",
        {"version": feature_version},
    )  # fmt: skip
    return None if found.empty else found.iloc[0]


def latest_model(feature_version: str = FEATURE_VERSION) -> RegisteredModel:
    """The newest registered model of the feature version (the one predict uses)."""
    row = _latest_row(feature_version)
    if row is None:
        raise NoRegisteredModel(
            f"no registered model for feature version {feature_version}: run `hoopflow train` first"
        )
    return RegisteredModel(str(row.model_version), str(row.feature_version), str(row.model_path),
                           pd.Timestamp(row.test_start).date(), pd.Timestamp(row.test_end).date())  # fmt: skip


class NoRegisteredModel(LookupError):
    pass


_MODELS: dict[str, PointsModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(model_path: str) -> PointsModel:
    """The model file from the landing zone, read once per process and location."""
    landing = get_settings().landing_block()
    uri = landing.uri(model_path)
    with _MODELS_LOCK:
        if uri not in _MODELS:
            _MODELS[uri] = model_from_bytes(landing.read_bytes(model_path))
        return _MODELS[uri]


# ---------------------------------------------------------------- training


@dataclass
class Trained:
    """A train_model task's result: the report (not yet judged), the model, its plot."""

    report: TrainingReport
    model: PointsModel
    plot: bytes


def train_on(rows: pd.DataFrame, start: date, end: date, test_from: date | None = None) -> Trained:
    """The quality rule, the split, the fit, the test metrics next to the baselines, the
    importance and the plot, on feature-store rows (no Prefect: tests call it). Rows of a game
    with an open critical reconciliation finding (`critical_game`) are left out, not
    down-weighted: their box score is not known to be right."""
    ok = passes_quality(rows) & rows[TARGET].notna()
    critical = rows["critical_game"].astype(bool) if "critical_game" in rows else pd.Series(False, index=rows.index)
    excluded = int((ok & critical).sum())
    ok &= ~critical
    kept = rows[ok]
    if kept.empty:
        raise SplitError(f"no feature-store rows pass the quality rule in {start} → {end}")
    split = chronological_split(list(kept.game_date.unique()), test_from)
    train, validation, test = (split.part(kept, n) for n in ("train", "validation", "test"))
    t0 = time.perf_counter()
    model = fit_points_model(train, validation)
    seconds = time.perf_counter() - t0
    predicted = model.predict(test)
    metrics = evaluate(test, predicted)
    report = TrainingReport(
        start=start, end=end, feature_version=FEATURE_VERSION, split=split,
        rows={"train": len(train), "validation": len(validation), "test": len(test),
              "dropped": int((~ok).sum()) - excluded, "reconcile_excluded": excluded},
        metrics=metrics, importance=feature_importance(model, validation), iterations=int(model.regressor_.n_iter_),
        seconds=round(seconds, 2),
    )  # fmt: skip
    return Trained(report, model, render_plot(test[TARGET], predicted, metrics))


@task(name="train_model", task_run_name="train-model-{start}-{end}", cache_policy=NO_CACHE)
def train_model(start: date, end: date, test_from: date | None = None) -> Trained:
    """Read the range's feature store and train (judged by the flow, registered only if it passes)."""
    rows = feature_rows(start, end)
    return train_on(rows.assign(critical_game=rows.game_id.isin(critical_games(start, end))), start, end, test_from)


@task(name="register_model", task_run_name="register-model", cache_policy=NO_CACHE)
def register_model(trained: Trained) -> TrainingReport:
    """The model file and its plot into the landing zone (a bucket in production) under a
    versioned path, then one `nba_predictions.models` row: written last, so a model is only
    ever "latest" once its file is in place."""
    data = model_bytes(trained.model)
    now = datetime.now(timezone.utc)
    digest = hashlib.sha256(data).hexdigest()[:8]
    version = f"{now:%Y%m%dT%H%M%SZ}-{digest}"
    r = trained.report
    folder = f"models/{r.feature_version}/{version}"
    settings = get_settings()
    row = _latest_row(r.feature_version)
    if row is not None:
        same_range = (pd.Timestamp(row.train_start).date(), pd.Timestamp(row.test_end).date()) == (
            r.split.train[0], r.split.test[-1])  # fmt: skip
        if str(row.model_version).endswith(f"-{digest}") and same_range:
            # A rerun on the same data and code: the byte-identical model is already the latest.
            return replace(r, version=str(row.model_version), model_uri=row.model_uri, plot_uri=row.plot_uri,
                           registered_at=pd.Timestamp(row.registered_at).to_pydatetime())  # fmt: skip
    landing = settings.landing_block()
    model_uri = landing.write_bytes(f"{folder}/model.joblib", data)
    plot_uri = landing.write_bytes(f"{folder}/evaluation.png", trained.plot)
    report = replace(r, version=version, model_uri=model_uri, plot_uri=plot_uri, registered_at=now)
    ctx = FlowRunContext.get()
    row = {
        "model_version": version, "feature_version": r.feature_version,
        "model_kind": "scoring level + HistGradientBoostingRegressor", "params": json.dumps(r.params),
        "features": json.dumps(list(trained.model.features)),
        "train_start": r.split.train[0], "train_end": r.split.train[-1],
        "validation_start": r.split.validation[0], "validation_end": r.split.validation[-1],
        "test_start": r.split.test[0], "test_end": r.split.test[-1],
        "train_rows": r.rows["train"], "validation_rows": r.rows["validation"], "test_rows": r.rows["test"],
        "dropped_rows": r.rows["dropped"], "reconcile_excluded_rows": r.rows.get("reconcile_excluded", 0),
        "iterations": r.iterations, "train_seconds": r.seconds,
        "test_mae": r.metrics["model"].mae, "test_rmse": r.metrics["model"].rmse,
        "baseline_last_10_mae": r.metrics["last_10"].mae, "baseline_season_mae": r.metrics["season"].mae,
        "metrics": json.dumps({k: asdict(m) for k, m in r.metrics.items()}),
        "feature_importance": json.dumps(r.importance),
        "model_path": f"{folder}/model.joblib", "model_uri": model_uri, "plot_uri": plot_uri,
        "code_version": module_code_version(__name__),
        "flow_run_id": str(ctx.flow_run.id) if ctx and ctx.flow_run else None, "registered_at": now,
    }  # fmt: skip
    settings.warehouse_block().append(MODELS, pd.DataFrame([row]))
    return report


# ---------------------------------------------------------------- predicting and grading


@dataclass(frozen=True)
class DateOutcome:
    """What predict or grade did on one date."""

    game_date: date
    status: str  # predicted | graded | ungraded | failed
    rows: int = 0
    message: str = ""
    mae: float | None = None  # graded: the model's; and the baselines' on the same rows
    mae_last_10: float | None = None
    mae_season: float | None = None


def prediction_rows(features: pd.DataFrame, model: PointsModel, version: str, now: datetime) -> pd.DataFrame:
    """One prediction per row that passes the quality rule (the model never saw the others)."""
    rows = features[passes_quality(features)]
    base = baselines(rows)
    return rows[["game_date", "season", "game_id", "player_id", "team_id", "opponent_team_id",
                 "feature_version", "feature_quality_score"]].assign(  # fmt: skip
        model_version=version,
        predicted_points=model.predict(rows) if len(rows) else np.array([], dtype="float64"),
        baseline_last_10=base.last_10.to_numpy(),
        baseline_season=base.season.to_numpy(),
        scorer_tier=scorer_tier(rows.points_avg_season).to_numpy(),
        predicted_at=now,
    )


def grading_rows(predictions: pd.DataFrame, box: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Each prediction whose player is in the date's box score, with its errors."""
    graded = predictions.merge(box[["game_id", "player_id", "pts"]], on=["game_id", "player_id"])
    error = graded.predicted_points - graded.pts
    return graded.assign(
        actual_points=graded.pts, error=error, absolute_error=error.abs(),
        within_3=error.abs() <= 3, within_5=error.abs() <= 5, graded_at=now,
    )  # fmt: skip


@task(name="predict_date", task_run_name="predict-{game_date}", cache_policy=NO_CACHE)
def predict_date(game_date: date, model_version: str, model_path: str) -> DateOutcome:
    """Replace the date's predictions (re-running a date never duplicates)."""
    features = feature_rows(game_date, game_date)
    if features.empty:
        raise MissingInputError(
            f"{ML_FEATURE_STORE.id} has no {FEATURE_VERSION} rows for {game_date}: run the precompute phase first"
        )
    model = load_model(model_path)

    def compute(wh, detail):
        rows = prediction_rows(features, model, model_version, datetime.now(timezone.utc))
        detail.update(model_version=model_version, dropped_by_quality_rule=len(features) - len(rows))
        return rows

    written = write_partition(PREDICTIONS, game_date, model_version, module_code_version(__name__), compute)
    dropped = len(features) - written.rows
    note = f"; {dropped} of {len(features)} rows fail the quality rule" if dropped else ""
    return DateOutcome(game_date, "predicted", written.rows, f"{written.rows} predictions with {model_version}{note}")


@task(name="grade_date", task_run_name="grade-{game_date}", cache_policy=NO_CACHE)
def grade_date(game_date: date) -> DateOutcome:
    """Replace the date's grades; a date whose box score is not in yet stays ungraded."""
    wh = get_settings().warehouse_block()
    predictions = wh.query(f"SELECT * FROM {PREDICTIONS.id} WHERE game_date = @d", {"d": game_date})
    if predictions.empty:
        raise MissingInputError(f"no predictions for {game_date}: run `hoopflow predict` first")
    box = wh.query(f"SELECT game_id, player_id, pts FROM {RAW_PLAYER_BOXSCORES.id} WHERE game_date = @d", {"d": game_date})
    if box.empty:
        return DateOutcome(game_date, "ungraded", 0, f"no box score for {game_date} yet: graded once its games are in")
    version = str(predictions.model_version.iloc[0])
    graded = grading_rows(predictions, box, datetime.now(timezone.utc))

    def compute(wh, detail):
        detail.update(model_version=version, not_in_box_score=len(predictions) - len(graded))
        return graded

    written = write_partition(GRADING, game_date, version, module_code_version(__name__), compute)
    missing = len(predictions) - written.rows
    actual = graded.actual_points.astype("float64")
    return DateOutcome(
        game_date, "graded", written.rows,
        f"{written.rows} predictions graded" + (f"; {missing} players not in the box score" if missing else ""),
        mae=float(graded.absolute_error.mean()) if len(graded) else None,
        mae_last_10=float((graded.baseline_last_10 - actual).abs().mean()) if len(graded) else None,
        mae_season=float((graded.baseline_season - actual).abs().mean()) if len(graded) else None,
    )  # fmt: skip


def graded_summary(start: date, end: date) -> dict[str, Any]:
    """The grades of [start, end]: the model's and the baselines' errors on the same rows."""
    found = get_settings().warehouse_block().query(
        f"SELECT count(*) AS graded_rows, avg(absolute_error) AS mae, avg(error) AS bias, "
        "avg(abs(baseline_last_10 - actual_points)) AS mae_last_10, "
        "avg(abs(baseline_season - actual_points)) AS mae_season, "
        f"avg(CASE WHEN within_5 THEN 1.0 ELSE 0.0 END) AS within_5 FROM {GRADING.id} "
        "WHERE game_date BETWEEN @start AND @end", {"start": start, "end": end},
    )  # fmt: skip
    row = found.iloc[0]
    out = {k: (None if pd.isna(row[k]) else float(row[k])) for k in found.columns if k != "graded_rows"}
    return {"rows": int(row.graded_rows), **out}


# ---------------------------------------------------------------- a range of dates


@dataclass
class DatesReport:
    """predict or grade over a range: one outcome per date."""

    kind: str  # predict | grade
    start: date
    end: date
    outcomes: list[DateOutcome]
    model_version: str | None = None
    summary_numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[DateOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def done(self) -> list[date]:
        return [o.game_date for o in self.outcomes if o.status in ("predicted", "graded")]

    def headline(self) -> str:
        counts = {s: sum(o.status == s for o in self.outcomes) for s in ("predicted", "graded", "ungraded", "failed")}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        line = f"{self.kind} {self.start} → {self.end}: {len(self.outcomes)} dates" + (f" ({', '.join(parts)})" if parts else "")
        s = self.summary_numbers
        if s.get("rows"):
            line += (f"; {s['rows']:,} graded rows: model MAE {s['mae']:.3f}, last-10 {s['mae_last_10']:.3f}, "
                     f"season {s['mae_season']:.3f}")  # fmt: skip
        if self.failed:
            line += f"; {len(self.failed)} of {len(self.outcomes)} dates failed: " + ", ".join(
                f"{o.game_date} ({o.message})" for o in self.failed[:5]
            )
        return line

    def to_text(self) -> str:
        lines = [self.headline(), ""]
        lines += [f"  {o.game_date}  {o.status:<9} {o.message}" for o in self.outcomes]
        return "\n".join(lines)

    def table(self) -> list[dict[str, Any]]:
        return [{"date": str(o.game_date), "status": o.status, "rows": o.rows, "model MAE": _r(o.mae, 3),
                 "last-10 MAE": _r(o.mae_last_10, 3), "season MAE": _r(o.mae_season, 3), "message": o.message}
                for o in self.outcomes]  # fmt: skip


class DatesFailed(RuntimeError):
    """One or more dates of a predict or grade run failed (the others were written)."""

    def __init__(self, report: DatesReport):
        super().__init__(report.headline())
        self.report = report

    def __reduce__(self):
        return (DatesFailed, (self.report,))


def outcome_of(game_date: date, state: Any) -> DateOutcome:
    """A date task's outcome; a failed task becomes a failed outcome with its error."""
    if state.is_completed():
        return state.result()
    error = state.result(raise_on_failure=False)
    message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(state.message)
    return DateOutcome(game_date, "failed", 0, message)


@dataclass
class MLResult:
    """The ml phase: the registered model and the test dates it predicted and graded."""

    model_version: str
    feature_version: str
    metrics: dict[str, Metrics]  # model, last_10, season on the test rows
    dates_predicted: list[date]
    dates_graded: list[date]
    graded: dict[str, Any]  # rows, mae, mae_last_10, mae_season over the graded test dates
    training: TrainingReport

    def to_text(self) -> str:
        g = self.graded
        lines = [self.training.to_text(), ""]
        lines.append(f"predicted {len(self.dates_predicted)} and graded {len(self.dates_graded)} test dates")
        if g.get("rows"):
            lines.append(f"graded against the box scores: {g['rows']:,} rows, model MAE {g['mae']:.3f}, "
                         f"last-10 {g['mae_last_10']:.3f}, season {g['mae_season']:.3f}")  # fmt: skip
        return "\n".join(lines)
