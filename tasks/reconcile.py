"""Reconcile phase: NBA.com's three feeds (box score, shot chart, schedule) against each other
and against ESPN's team box, per game date, after raw and before analytics.

    provider_games  each ESPN game mapped to its NBA.com game (US-Eastern date, home and away
                    team, through config/provider_teams.yaml); a game in one provider only, or
                    mapped twice, is kept with its status, never dropped
    discrepancies   one row per finding, with its history: the date's partition is its
                    previous rows merged with today's findings (`merge_history`)
    game_quality    per NBA.com game, the weighted share of its checks passed, and its bucket

The warehouse gathers each comparison (tasks/sql/reconcile_*.sql, set-based); the plain
functions below lay them out in long form (`comparisons`), apply the rules of
config/reconcile.yaml (`evaluate`), merge history and score games: testable without Prefect.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from blocks.warehouse import TableSpec
from engine.processors import Phase, Processor, ProcessorRun, Read, _sql_text
from tasks.analytics import sql_file
from tasks.raw import seasons_of
from tasks.reconcile_rules import FEEDS, RULES, ReconcileConfig, load_rules, rules_text
from tasks.teams import team_lookup

PROVIDER_GAMES = TableSpec(
    dataset="nba_ops",
    name="provider_games",
    columns=(
        ("game_date", "DATE"), ("game_id", "STRING"), ("provider", "STRING"),
        ("provider_game_id", "STRING"), ("home_team_id", "INT64"), ("away_team_id", "INT64"),
        ("home_team", "STRING"), ("away_team", "STRING"), ("provider_teams", "INT64"),
        ("status", "STRING"), ("reconciled_at", "TIMESTAMP"),
    ),
    cluster_by=("game_id",),
    required=("game_date", "provider", "status"),
    description="Each NBA.com game and each ESPN game of a date, mapped: matched | missing_in_espn | "
                "missing_in_nba | duplicate | espn_unavailable (ESPN has no data for the season).",
)  # fmt: skip

DISCREPANCIES = TableSpec(
    dataset="nba_ops",
    name="discrepancies",
    columns=(
        ("finding_key", "STRING"), ("game_date", "DATE"), ("game_id", "STRING"),
        ("provider_game_id", "STRING"), ("entity", "STRING"), ("entity_id", "INT64"),
        ("entity_name", "STRING"), ("rule", "STRING"), ("field", "STRING"),
        ("box_value", "FLOAT64"), ("shot_chart_value", "FLOAT64"), ("schedule_value", "FLOAT64"),
        ("espn_value", "FLOAT64"), ("difference", "FLOAT64"), ("tolerance", "FLOAT64"),
        ("severity", "STRING"), ("message", "STRING"), ("first_seen_at", "TIMESTAMP"),
        ("last_seen_at", "TIMESTAMP"), ("status", "STRING"), ("resolved_at", "TIMESTAMP"),
    ),
    cluster_by=("rule", "severity"),
    key=("finding_key",),
    required=("finding_key", "game_date", "entity", "rule", "field", "severity", "first_seen_at",
              "last_seen_at", "status"),
    description="One row per reconciliation finding, open or resolved, with when it was first and "
                "last seen: a rerun updates last_seen_at; a finding gone from the sources is resolved "
                "and kept.",
)  # fmt: skip

GAME_QUALITY = TableSpec(
    dataset="nba_ops",
    name="game_quality",
    columns=(
        ("game_date", "DATE"), ("game_id", "STRING"), ("espn_available", "BOOL"),
        ("checks", "INT64"), ("checks_failed", "INT64"), ("critical_findings", "INT64"),
        ("warning_findings", "INT64"), ("quality_score", "FLOAT64"), ("quality_bucket", "STRING"),
    ),
    cluster_by=("quality_bucket",),
    key=("game_id",),
    required=("game_date", "game_id", "checks", "quality_score", "quality_bucket"),
    description="Per NBA.com game: its (rule, field) checks, the failed ones, and the weighted share "
                "passed (0–100) with its bucket: high ≥ 90, medium 70–89, low < 70 (config/reconcile.yaml).",
)  # fmt: skip

RECONCILE_TABLES = (PROVIDER_GAMES, DISCREPANCIES, GAME_QUALITY)
OPEN, RESOLVED = "open", "resolved"
_SQL = ("reconcile_player_shot_chart", "reconcile_team_totals", "reconcile_game_feeds")

# ESPN's column for each NBA.com box column it totals (player rebounds, player turnovers:
# `total_turnovers` adds team turnovers, which NBA.com's TOV leaves out).
ESPN_FIELDS = {
    "pts": "team_score", "fgm": "field_goals_made", "fga": "field_goals_attempted",
    "fg3m": "three_point_field_goals_made", "fg3a": "three_point_field_goals_attempted",
    "ftm": "free_throws_made", "fta": "free_throws_attempted", "oreb": "offensive_rebounds",
    "dreb": "defensive_rebounds", "reb": "total_rebounds", "ast": "assists", "stl": "steals",
    "blk": "blocks", "tov": "turnovers", "pf": "fouls",
}  # fmt: skip

_LONG = ["game_id", "provider_game_id", "entity", "entity_id", "entity_name", "rule", "field",
         *(f"{f}_value" for f in FEEDS)]  # fmt: skip


# ---------------------------------------------------------------- mapping the providers


def espn_games(espn: pd.DataFrame) -> pd.DataFrame:
    """One row per ESPN game of the date: its home and away team as NBA.com ids (either side's
    row says both teams: `opponent_team_id`), and how many team rows ESPN has for it."""
    to_nba = team_lookup("espn_team_id", "nba_team_id")
    cols = ["provider_game_id", "home_team_id", "away_team_id", "provider_teams"]
    if not len(espn):
        return pd.DataFrame(columns=cols)
    team, opp = espn.team_id.astype(int), espn.opponent_team_id.astype(int)
    home = espn.team_home_away == "home"
    sides = pd.DataFrame({"provider_game_id": espn.game_id.astype(str),
                          "home_team_id": team.where(home, opp).map(to_nba),
                          "away_team_id": opp.where(home, team).map(to_nba), "team_id": team})  # fmt: skip
    games = sides.groupby("provider_game_id", sort=True).agg(
        home_team_id=("home_team_id", "first"), away_team_id=("away_team_id", "first"),
        provider_teams=("team_id", "nunique"))  # fmt: skip
    return games.reset_index()[cols]


def map_provider_games(nba: pd.DataFrame, espn: pd.DataFrame, espn_available: bool) -> pd.DataFrame:
    """NBA.com's games of a date (game_id, home/away team id and abbreviation) and ESPN's
    (`espn_games`) → one row per pairing: matched; duplicate (an NBA.com game two ESPN games
    map to, one row each); missing_in_espn; missing_in_nba (an ESPN game no NBA.com game of
    the date has); espn_unavailable (ESPN has no data for the season: nothing to map)."""
    cols = ["game_id", "provider_game_id", "home_team_id", "away_team_id", "home_team", "away_team",
            "provider_teams", "status"]  # fmt: skip
    nba = nba[["game_id", "home_team_id", "away_team_id", "home_team", "away_team"]].astype({"home_team_id": int, "away_team_id": int})
    if not espn_available:
        return nba.assign(provider_game_id=None, provider_teams=0, status="espn_unavailable")[cols]
    games = espn_games(espn)
    both = nba.merge(games, on=["home_team_id", "away_team_id"], how="outer", indicator=True)
    mapped = both.groupby(["home_team_id", "away_team_id"]).provider_game_id.transform("count")
    both["status"] = np.select(
        [both._merge == "left_only", both._merge == "right_only", mapped > 1],
        ["missing_in_espn", "missing_in_nba", "duplicate"], "matched",
    )
    abbr = team_lookup("nba_team_id", "nba")
    both["home_team"] = both.home_team.fillna(both.home_team_id.map(abbr))
    both["away_team"] = both.away_team.fillna(both.away_team_id.map(abbr))
    both["provider_teams"] = both.provider_teams.fillna(0).astype(int)
    return both[cols].sort_values(["game_id", "provider_game_id"], na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- comparisons in long form


def _long(frame: pd.DataFrame, rule: str, entity: str, feeds: dict[str, str], entity_id: str | None,
          entity_name: str) -> pd.DataFrame:
    """One row per (row of `frame`, field of the rule): the rule's feeds as `<feed>_value`
    (`feeds`: feed → its column, `{f}` standing for the field). Built column-wise at once."""
    fields, n = RULES[rule].fields, len(frame)
    if not n:
        return pd.DataFrame(columns=_LONG)
    k = len(fields)
    out: dict[str, Any] = {
        "game_id": np.tile(frame.game_id.to_numpy(dtype=object), k),
        "provider_game_id": np.tile(frame.provider_game_id.to_numpy(dtype=object), k),
        "entity": entity,
        "entity_id": np.tile(frame[entity_id].to_numpy(dtype=object), k) if entity_id else None,
        "entity_name": np.tile(frame[entity_name].to_numpy(dtype=object), k),
        "rule": rule,
        "field": np.repeat(np.array(fields, dtype=object), n),
    }
    for feed in FEEDS:
        col = feeds.get(feed)
        out[f"{feed}_value"] = (np.concatenate([pd.to_numeric(frame[col.format(f=f)]).to_numpy(dtype="float64", na_value=np.nan)
                                                for f in fields]) if col else np.nan)  # fmt: skip
    return pd.DataFrame(out, columns=_LONG)


def comparisons(
    players: pd.DataFrame, teams: pd.DataFrame, games: pd.DataFrame, espn: pd.DataFrame, mapping: pd.DataFrame
) -> pd.DataFrame:
    """Every check of the date in long form: one row per (rule, field, entity) with the value
    in each feed it compares (NaN: not compared). Inputs: the three SQL files' rows, ESPN's
    raw rows and the date's provider_games."""
    matched = mapping[mapping.status.isin(["matched", "duplicate"])]
    espn_of = dict(zip(matched.game_id, matched.provider_game_id, strict=True))  # duplicate: one of them
    to_nba = team_lookup("espn_team_id", "nba_team_id")
    e = espn.assign(team_id=espn.team_id.astype(int).map(to_nba), provider_game_id=espn.game_id.astype(str))
    e = e[e.provider_game_id.isin(set(espn_of.values()))]
    e = e.assign(game_id=e.provider_game_id.map({v: k for k, v in espn_of.items()}))

    out = []
    p = players.assign(provider_game_id=players.game_id.map(espn_of))
    out.append(_long(p, "shot_chart", "player", {"box": "box_{f}", "shot_chart": "shot_chart_{f}"},
                     "player_id", "player_name"))

    t = teams.merge(e.rename(columns={v: f"espn_{k}" for k, v in ESPN_FIELDS.items()})
                    [["game_id", "team_id", *(f"espn_{k}" for k in ESPN_FIELDS)]],
                    on=["game_id", "team_id"], how="left")  # fmt: skip
    t["provider_game_id"] = t.game_id.map(espn_of)
    out.append(_long(t.assign(schedule_pts=t.final_score), "team_points", "team",
                     {"box": "{f}", "schedule": "schedule_{f}", "espn": "espn_{f}"}, "team_id", "team"))
    # Only where ESPN has the team: a missing team is teams_present's finding, not 14 of these.
    te = t[t.espn_fga.notna() & t.fga.notna()]
    out.append(_long(te, "espn_team_totals", "team", {"box": "{f}", "espn": "espn_{f}"}, "team_id", "team"))

    g = games.assign(provider_game_id=games.game_id.map(espn_of),
                     entity_name=games.away_team + " @ " + games.home_team)  # fmt: skip
    per_team = g.box_minutes / g.box_teams.where(g.box_teams > 0)
    g["schedule_num_ot"] = g.num_ot
    g["shot_chart_num_ot"] = g.last_period - 4
    g["box_num_ot"] = ((per_team - 240) / 25).round()
    out.append(_long(g, "overtime", "game", {"schedule": "schedule_{f}", "shot_chart": "shot_chart_{f}",
                                             "box": "box_{f}"}, None, "entity_name"))  # fmt: skip
    espn_teams = e.groupby("game_id").team_id.nunique()
    g["schedule_team_id"], g["box_team_id"], g["shot_chart_team_id"] = 2, g.box_teams, g.shot_chart_teams
    g["espn_team_id"] = g.game_id.map(espn_teams).where(g.provider_game_id.notna())
    g.loc[g.provider_game_id.notna(), "espn_team_id"] = g.espn_team_id.fillna(0)
    out.append(_long(g, "teams_present", "game", {"schedule": "schedule_{f}", "box": "box_{f}",
                                                  "shot_chart": "shot_chart_{f}", "espn": "espn_{f}"}, None, "entity_name"))  # fmt: skip

    # provider_game: NBA.com lists the game once (1) or not (0); ESPN maps 0, 1 or 2 games to it.
    m = mapping[mapping.status != "espn_unavailable"]
    per_game = m.groupby("game_id").provider_game_id.count()
    m = m.assign(schedule_game_id=np.where(m.game_id.notna(), 1, 0),
                 espn_game_id=np.where(m.game_id.notna(), m.game_id.map(per_game).fillna(0), 1),
                 entity_name=m.away_team + " @ " + m.home_team)  # fmt: skip
    m = m[(m.status != "duplicate") | ~m.game_id.duplicated()]  # one check per NBA.com game
    out.append(_long(m, "provider_game", "game", {"schedule": "schedule_{f}", "espn": "espn_{f}"}, None, "entity_name"))
    long = pd.concat([o for o in out if len(o)], ignore_index=True) if any(len(o) for o in out) else pd.DataFrame(columns=_LONG)
    long["entity_id"] = pd.array(long.entity_id, dtype="Int64")
    return long[_LONG]


# ---------------------------------------------------------------- rules, history, quality


def evaluate(long: pd.DataFrame, config: ReconcileConfig) -> pd.DataFrame:
    """Each check with its difference (the rule's first feed − the furthest other feed), its
    tolerance and its severity when it fails (None: passed). A check without its reference
    feed or without another feed holding a value (ESPN not available) is not a check and is
    left out."""
    cols = [*long.columns, "difference", "tolerance", "severity"]
    diff = np.full(len(long), np.nan)
    values = {f: long[f"{f}_value"].to_numpy(dtype="float64", na_value=np.nan) for f in FEEDS}
    rules = long.rule.to_numpy()
    for rule, spec in RULES.items():
        sel = rules == rule
        if not sel.any():
            continue
        ref = values[spec.feeds[0]][sel]
        gaps = np.column_stack([ref - values[f][sel] for f in spec.feeds[1:]])
        furthest = np.argmax(np.where(np.isnan(gaps), -1.0, np.abs(gaps)), axis=1)
        diff[sel] = gaps[np.arange(len(gaps)), furthest]  # NaN: nothing to compare
    keys = (long.rule + "|" + long.field).to_numpy()
    fields = {f"{r}|{f}": config.field(r, f) for r, fs in config.rules.items() for f in fs}
    tolerance = np.array([fields[k].tolerance for k in keys], dtype="float64")
    above = np.array([np.inf if fields[k].critical_above is None else fields[k].critical_above for k in keys])
    base = np.array([fields[k].severity for k in keys], dtype=object)
    gap = np.abs(diff)
    severity = np.where(gap <= tolerance, None, np.where(gap > above, "critical", base))
    out = long.assign(difference=diff, tolerance=tolerance)
    out["severity"] = pd.Series(severity, index=out.index, dtype=object)  # None: passed (not NaN)
    return out[cols][~np.isnan(diff)].reset_index(drop=True)


def _key(df: pd.DataFrame) -> pd.Series:
    game = df.game_id.where(df.game_id.notna(), "espn:" + df.provider_game_id.astype(str))
    ent = df.entity_id.astype("string").fillna("")
    return df.rule + "|" + df.field + "|" + game + "|" + df.entity + "|" + ent


def _message(r: Any) -> str:
    if r.rule == "provider_game":
        if not r.schedule_value:
            return f"ESPN game {r.provider_game_id} ({r.entity_name}) has no NBA.com game on its date"
        if r.espn_value == 0:
            return f"NBA.com game {r.game_id} ({r.entity_name}) has no ESPN game on its date"
        return f"NBA.com game {r.game_id} ({r.entity_name}) is mapped from {r.espn_value:g} ESPN games"
    shown = ", ".join(f"{f} {getattr(r, f + '_value'):g}" for f in RULES[r.rule].feeds
                      if not pd.isna(getattr(r, f + "_value")))  # fmt: skip
    return f"{r.field}: {shown} (difference {r.difference:+g}, tolerance {r.tolerance:g})"


def findings(checks: pd.DataFrame, game_date: Any) -> pd.DataFrame:
    """The failed checks as finding rows of nba_ops.discrepancies (without their history)."""
    failed = checks[checks.severity.notna()].copy()
    failed["finding_key"] = _key(failed)
    failed["game_date"] = game_date
    failed["message"] = [_message(r) for r in failed.itertuples(index=False)]
    return failed


def merge_history(previous: pd.DataFrame, current: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The date's partition of nba_ops.discrepancies: a finding seen again keeps its
    first_seen_at and gets last_seen_at = now (reopened if it had been resolved); a new one
    starts both at now; an open finding not seen any more is resolved at now and kept; a
    resolved one stays as it was. One row per finding_key, never two."""
    cols = [c for c, _ in DISCREPANCIES.columns]
    prev, cur = previous.reindex(columns=cols), current.reindex(columns=cols)
    first = dict(zip(prev.finding_key, pd.to_datetime(prev.first_seen_at, utc=True), strict=True))
    cur["first_seen_at"] = [first.get(k, now) for k in cur.finding_key]
    cur["last_seen_at"], cur["status"], cur["resolved_at"] = now, OPEN, None
    gone = prev[~prev.finding_key.isin(set(cur.finding_key))].copy()
    resolving = gone.status == OPEN
    gone["resolved_at"] = gone.resolved_at.astype("object")
    gone.loc[resolving, "resolved_at"] = now
    gone.loc[resolving, "status"] = RESOLVED
    out = pd.concat([f for f in (cur, gone) if len(f)], ignore_index=True) if len(cur) or len(gone) else cur
    for c in ("first_seen_at", "last_seen_at", "resolved_at"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out.sort_values("finding_key").reset_index(drop=True)


def game_quality_of(checks: pd.DataFrame, mapping: pd.DataFrame, config: ReconcileConfig) -> pd.DataFrame:
    """Per NBA.com game: its (rule, field) checks (a pair fails when any entity fails it), and
    the quality score: 100 · Σ weight of passed pairs / (Σ weight of passed + Σ weight of
    failed), a passed pair weighing its configured severity, a failed one its worst finding's."""
    rank = {"info": 0, "warning": 1, "critical": 2}
    cols = [c for c, _ in GAME_QUALITY.columns if c != "game_date"]
    nba = mapping[mapping.game_id.notna()].drop_duplicates("game_id")
    c = checks[checks.game_id.notna()]
    sev = c.severity.map(rank)  # NaN: passed
    pairs = pd.DataFrame({"game_id": c.game_id, "rule": c.rule, "field": c.field, "rank": sev,
                          "critical": c.severity == "critical", "warning": c.severity == "warning"})  # fmt: skip
    per_pair = pairs.groupby(["game_id", "rule", "field"], sort=False).agg(
        rank=("rank", "max"), critical=("critical", "sum"), warning=("warning", "sum")).reset_index()  # fmt: skip
    by_rank = {v: config.weights[k] for k, v in rank.items()}
    base = np.array([config.weights[config.field(r, f).severity] for r, f in zip(per_pair.rule, per_pair.field, strict=True)])
    failed = per_pair["rank"].notna()
    per_pair["passed_w"] = np.where(failed, 0.0, base)
    per_pair["failed_w"] = np.where(failed, per_pair["rank"].map(by_rank).fillna(0.0), 0.0)
    per_pair["failed"] = failed
    games = per_pair.groupby("game_id").agg(
        checks=("rule", "size"), checks_failed=("failed", "sum"), critical_findings=("critical", "sum"),
        warning_findings=("warning", "sum"), passed_w=("passed_w", "sum"), failed_w=("failed_w", "sum"))  # fmt: skip
    out = pd.DataFrame({"game_id": nba.game_id, "espn_available": (nba.status != "espn_unavailable").to_numpy()})
    out = out.merge(games.reset_index(), on="game_id", how="left").fillna(
        {"checks": 0, "checks_failed": 0, "critical_findings": 0, "warning_findings": 0, "passed_w": 0.0, "failed_w": 0.0})  # fmt: skip
    total = out.passed_w + out.failed_w
    out["quality_score"] = (100 * out.passed_w / total.where(total > 0)).round(1).fillna(100.0)
    out["quality_bucket"] = [config.buckets.of(v) for v in out.quality_score]
    for col in ("checks", "checks_failed", "critical_findings", "warning_findings"):
        out[col] = out[col].astype(int)
    return out[cols].reset_index(drop=True)


# ---------------------------------------------------------------- the phase


def _query(run: ProcessorRun, name: str) -> pd.DataFrame:
    return run.warehouse.query(_sql_text(sql_file(name)), {"game_date": run.game_date})


def _nba_games(run: ProcessorRun) -> pd.DataFrame:
    return run.warehouse.query(
        "SELECT game_id, home_team_id, away_team_id, home_team_abbreviation AS home_team, "
        "away_team_abbreviation AS away_team FROM nba_raw.schedule WHERE game_date = @game_date",
        {"game_date": run.game_date},
    )


def _espn_rows(run: ProcessorRun) -> pd.DataFrame:
    return run.warehouse.query("SELECT * FROM nba_raw.espn_team_boxscores WHERE game_date = @game_date",
                               {"game_date": run.game_date})  # fmt: skip


def _mapping(run: ProcessorRun) -> pd.DataFrame:
    return run.warehouse.query("SELECT * FROM nba_ops.provider_games WHERE game_date = @game_date",
                               {"game_date": run.game_date})  # fmt: skip


def _checks(run: ProcessorRun, mapping: pd.DataFrame) -> pd.DataFrame:
    long = comparisons(*(_query(run, name) for name in _SQL), _espn_rows(run), mapping)
    return evaluate(long, load_rules())


def provider_games(run: ProcessorRun) -> pd.DataFrame:
    """Its source is ESPN's: whether ESPN has data for the date's season at all (`covers`)."""
    available = run.source.covers(run.game_date)
    run.detail["espn_available"] = available
    mapped = map_provider_games(_nba_games(run), _espn_rows(run), available)
    return mapped.assign(game_date=run.game_date, provider="espn", reconciled_at=datetime.now(timezone.utc))


def discrepancies(run: ProcessorRun) -> pd.DataFrame:
    now = datetime.now(timezone.utc)
    current = findings(_checks(run, _mapping(run)), run.game_date)
    previous = run.warehouse.query(
        "SELECT * FROM nba_ops.discrepancies WHERE game_date = @game_date", {"game_date": run.game_date}
    ) if run.warehouse.has_table(DISCREPANCIES) else pd.DataFrame()  # fmt: skip
    merged = merge_history(previous, current, now)
    run.detail.update(open=int((merged.status == OPEN).sum()), resolved=int((merged.status == RESOLVED).sum()))
    return merged.assign(game_date=run.game_date)


def game_quality(run: ProcessorRun) -> pd.DataFrame:
    mapping = _mapping(run)
    return game_quality_of(_checks(run, mapping), mapping, load_rules()).assign(game_date=run.game_date)


_RAW = (Read("schedule"), Read("player_boxscores"), Read("shots"), Read("espn_team_boxscores"))
_SQL_FILES = tuple(sql_file(n) for n in _SQL)

RECONCILE = Phase(
    name="reconcile",
    processors=(
        Processor(PROVIDER_GAMES.name, PROVIDER_GAMES, provider_games,
                  reads=(Read("schedule"), Read("espn_team_boxscores")), provider="espn"),
        Processor(DISCREPANCIES.name, DISCREPANCIES, discrepancies, reads=(*_RAW, Read(PROVIDER_GAMES.name)),
                  after=(PROVIDER_GAMES.name,), sql=_SQL_FILES, config=rules_text),
        Processor(GAME_QUALITY.name, GAME_QUALITY, game_quality,
                  reads=(*_RAW, Read(PROVIDER_GAMES.name), Read(DISCREPANCIES.name)),
                  after=(PROVIDER_GAMES.name, DISCREPANCIES.name), sql=_SQL_FILES, config=rules_text),
    ),
    seasons=seasons_of,
)  # fmt: skip
