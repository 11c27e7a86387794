"""The reconciliation report of a date range, read back from the warehouse: open findings per
rule × severity, quality buckets, the worst games, findings opened and resolved by this run,
and where ESPN was not available. The reconcile flow publishes it as artifacts; `hoopflow
reconcile` prints it and exits by it (0 clean, 1 a critical finding, 2 warnings only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from blocks.warehouse import Warehouse
from tasks.reconcile import DISCREPANCIES, GAME_QUALITY, OPEN, PROVIDER_GAMES, RESOLVED
from tasks.reconcile_rules import RULES

WORST_GAMES = 10
_SEVERITIES = ("critical", "warning", "info")
_OPEN_COLUMNS = ["game_date", "game_id", "provider_game_id", "entity", "entity_name", "rule", "field",
                 "box_value", "shot_chart_value", "schedule_value", "espn_value", "difference", "severity",
                 "first_seen_at", "last_seen_at"]  # fmt: skip


@dataclass
class ReconcileReport:
    start: date
    end: date
    games: int = 0
    espn_unavailable: list[date] = field(default_factory=list)
    open: pd.DataFrame = field(default_factory=pd.DataFrame)
    opened: int = 0  # by this run (first seen since it started)
    resolved: int = 0  # by this run
    resolved_total: int = 0
    buckets: dict[str, int] = field(default_factory=dict)
    worst: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def critical(self) -> int:
        return int((self.open.severity == "critical").sum()) if len(self.open) else 0

    @property
    def warnings(self) -> int:
        return int((self.open.severity == "warning").sum()) if len(self.open) else 0

    @property
    def exit_code(self) -> int:
        return 1 if self.critical else 2 if self.warnings else 0

    def headline(self) -> str:
        span = str(self.start) if self.start == self.end else f"{self.start} → {self.end}"
        games = self.open.game_id.fillna(self.open.provider_game_id).nunique() if len(self.open) else 0
        verdict = "clean" if not len(self.open) else (
            f"{len(self.open)} open findings ({self.critical} critical, {self.warnings} warning) on {games} "
            f"game{'s' if games != 1 else ''}")  # fmt: skip
        espn = f"; ESPN not available on {len(self.espn_unavailable)} dates" if self.espn_unavailable else ""
        return f"reconcile {span}: {self.games} games, {verdict}{espn}"

    def counts(self) -> list[tuple[str, str, dict[str, int]]]:
        """(rule, field, open findings by severity) for every configured rule and field."""
        out = []
        for rule, spec in RULES.items():
            for f in spec.fields:
                sel = self.open[(self.open.rule == rule) & (self.open.field == f)] if len(self.open) else self.open
                out.append((rule, f, {s: int((sel.severity == s).sum()) if len(sel) else 0 for s in _SEVERITIES}))
        return out

    def open_rows(self) -> list[dict[str, Any]]:
        if not len(self.open):
            return []
        rows = self.open[_OPEN_COLUMNS].astype(object).where(self.open[_OPEN_COLUMNS].notna(), None)
        return [{k: (str(v) if isinstance(v, (date, datetime, pd.Timestamp)) else v) for k, v in r.items()}
                for r in rows.to_dict("records")]  # fmt: skip

    def to_markdown(self) -> str:
        lines = [f"# {self.headline()}", ""]
        lines += [f"Opened by this run: {self.opened}; resolved by this run: {self.resolved}; "
                  f"resolved and kept in nba_ops.discrepancies: {self.resolved_total}.", ""]  # fmt: skip
        if self.espn_unavailable:
            shown = ", ".join(map(str, self.espn_unavailable[:10])) + (" …" if len(self.espn_unavailable) > 10 else "")
            lines += [f"ESPN is not available for {len(self.espn_unavailable)} dates ({shown}): NBA.com's own feeds "
                      "were reconciled there.", ""]  # fmt: skip
        lines += ["## Open findings by rule and severity", "", "| rule | field | critical | warning | info |",
                  "|---|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {r} | {f} | {c['critical']} | {c['warning']} | {c['info']} |" for r, f, c in self.counts()]
        lines += ["", "## Game quality", "", "| bucket | games |", "|---|---:|"]
        lines += [f"| {b} | {self.buckets.get(b, 0)} |" for b in ("high", "medium", "low")]
        if len(self.worst):
            lines += ["", f"## Worst games (lowest quality, at most {WORST_GAMES})", "",
                      "| game date | game | score | bucket | critical | warning |", "|---|---|---:|---|---:|---:|"]  # fmt: skip
            lines += [f"| {pd.Timestamp(r.game_date).date()} | {r.game_id} | {r.quality_score:g} | {r.quality_bucket} | "
                      f"{r.critical_findings} | {r.warning_findings} |" for r in self.worst.itertuples()]  # fmt: skip
        if len(self.open):
            lines += ["", "## Open findings", ""]
            for r in self.open.itertuples():
                lines.append(f"- {pd.Timestamp(r.game_date).date()} {r.game_id or r.provider_game_id} {r.entity_name}: "
                             f"**{r.rule}** {r.message} — {r.severity}")  # fmt: skip
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        lines = [self.headline(), f"  opened by this run {self.opened}, resolved by this run {self.resolved}"]
        for r, f, c in self.counts():
            if any(c.values()):
                lines.append(f"  {r:<18} {f:<8} critical {c['critical']:>3}  warning {c['warning']:>3}")
        lines.append("  quality: " + ", ".join(f"{b} {self.buckets.get(b, 0)}" for b in ("high", "medium", "low")))
        for r in self.open.itertuples() if len(self.open) else ():
            lines.append(f"  {pd.Timestamp(r.game_date).date()} {r.game_id or r.provider_game_id} "
                         f"{r.entity_name}: {r.rule} {r.message} [{r.severity}]")  # fmt: skip
        return "\n".join(lines)


def reconcile_report(warehouse: Warehouse, start: date, end: date, since: datetime) -> ReconcileReport:
    """The report of [start, end] as the warehouse holds it; `since`: when the run started."""
    report = ReconcileReport(start, end)
    if not all(warehouse.has_table(t) for t in (PROVIDER_GAMES, DISCREPANCIES, GAME_QUALITY)):
        return report
    span = {"start": start, "end": end}
    found = warehouse.query(
        "SELECT * FROM nba_ops.discrepancies WHERE game_date BETWEEN @start AND @end "
        "ORDER BY game_date, game_id, rule, field, entity_id", span)  # fmt: skip
    since_ts = pd.Timestamp(since)
    first = pd.to_datetime(found.first_seen_at, utc=True)
    resolved_at = pd.to_datetime(found.resolved_at, utc=True)
    report.open = found[found.status == OPEN].reset_index(drop=True)
    report.opened = int(((found.status == OPEN) & (first >= since_ts)).sum())
    report.resolved = int(((found.status == RESOLVED) & (resolved_at >= since_ts)).sum())
    report.resolved_total = int((found.status == RESOLVED).sum())
    quality = warehouse.query(
        "SELECT * FROM nba_ops.game_quality WHERE game_date BETWEEN @start AND @end "
        "ORDER BY quality_score, game_date, game_id", span)  # fmt: skip
    report.games = len(quality)
    report.buckets = {str(k): int(v) for k, v in quality.quality_bucket.value_counts().items()}
    report.worst = quality[quality.quality_score < 100].head(WORST_GAMES)
    unavailable = warehouse.query(
        "SELECT DISTINCT game_date FROM nba_ops.provider_games WHERE game_date BETWEEN @start AND @end "
        "AND status = 'espn_unavailable' ORDER BY game_date", span)  # fmt: skip
    report.espn_unavailable = [pd.Timestamp(d).date() for d in unavailable.game_date]
    return report
