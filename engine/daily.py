"""The nightly run's date and the day's report: the games and their final scores, the top
scorers, rows written per table, and what each phase and its validation did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from blocks.warehouse import TableSpec, Warehouse
from engine.runner import PhaseResult

# NBA game dates are US Eastern dates: "yesterday" is yesterday in New York, wherever this runs.
GAME_DATE_ZONE = ZoneInfo("America/New_York")

GAMES_SQL = """
SELECT game_id, away_team_abbreviation AS away, away_pts, home_team_abbreviation AS home,
       home_pts, num_ot
FROM nba_raw.schedule WHERE game_date = @game_date ORDER BY game_id
"""

TOP_SCORERS_SQL = """
SELECT player_name, team_abbr, pts, reb, ast, minutes
FROM nba_analytics.player_game_summary WHERE game_date = @game_date
ORDER BY pts DESC, player_name LIMIT @top_n
"""


def default_game_date(now: datetime | None = None) -> date:
    """Yesterday in America/New_York (the nightly run processes the games that ended)."""
    now = now or datetime.now(GAME_DATE_ZONE)
    return now.astimezone(GAME_DATE_ZONE).date() - timedelta(days=1)


@dataclass
class DailyReport:
    game_date: date
    scheduled: bool  # the source lists games on the date
    games: int = 0  # games loaded (nba_raw.schedule rows)
    phases: list[PhaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped_by: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.stopped_by) or any(r.failed for r in self.phases)

    def headline(self) -> str:
        if not self.scheduled:
            return f"daily {self.game_date}: no games"
        status = "failed" if self.failed else "completed"
        done = ", ".join(f"{r.phase} {'failed' if r.failed else 'ran' if r.ran else 'current'}" for r in self.phases)
        text = f"daily {self.game_date}: {status}; {self.games} games; {done}"
        for r in self.phases:
            for d, message in r.failed.items():
                text += f"; {r.phase} {d}: {message}"
        return (text + (f"; {self.stopped_by}" if self.stopped_by else ""))[:2000]

    def to_text(self) -> str:
        return "\n".join([self.headline(), *(f"  {note}" for note in self.notes)])

    def to_markdown(self, games: pd.DataFrame, scorers: pd.DataFrame) -> str:
        lines = [f"# {self.headline()}", ""]
        lines += [f"- {note}" for note in self.notes]
        if self.phases:
            lines += ["", "| phase | ran | rows written | validation |", "|---|---|---|---|"]
            for r in self.phases:
                v = r.validation
                checks = (f"{v.status}: {sum(c.passed for c in v.results)}/{len(v.results)} passed"
                          if v else r.validation_message or "not validated")  # fmt: skip
                ran = "failed: " + "; ".join(r.failed.values()) if r.failed else "yes" if r.ran else "already current"
                lines.append(f"| {r.phase} | {ran} | {sum(r.rows.values()):,} | {checks} |")
        if len(games):
            lines += ["", "## Final scores", "", "| away | | home | | OT |", "|---|---|---|---|---|"]
            for g in games.itertuples():
                lines.append(f"| {g.away} | {g.away_pts} | {g.home} | {g.home_pts} | {g.num_ot or ''} |")
        if len(scorers):
            lines += ["", "## Top scorers", "", "| player | team | pts | reb | ast | min |", "|---|---|---|---|---|---|"]
            for p in scorers.itertuples():
                lines.append(f"| {p.player_name} | {p.team_abbr} | {p.pts} | {p.reb} | {p.ast} | {p.minutes:.0f} |")
        return "\n".join(lines)


def day_tables(warehouse: Warehouse, game_date: date, tables: Mapping[str, TableSpec],
               top_n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The date's games and top scorers, as far as the warehouse has them (`tables`: the
    phases' tables by name)."""
    games = (warehouse.query(GAMES_SQL, {"game_date": game_date})
             if warehouse.has_table(tables["schedule"]) else pd.DataFrame())  # fmt: skip
    scorers = (warehouse.query(TOP_SCORERS_SQL, {"game_date": game_date, "top_n": top_n})
               if warehouse.has_table(tables["player_game_summary"]) else pd.DataFrame())  # fmt: skip
    return games, scorers
