"""The Warehouse contract, run on both implementations: a DuckDB file and BigQuery (the
bqemulator package serving the BigQuery REST API on a loopback port, from .venv-bqemu).

Expected values are written by hand or read straight from the bundled schedule CSV.
"""

from __future__ import annotations

import itertools
import os
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from blocks.warehouse import TableSpec, Warehouse
from tasks.raw import RAW_SCHEDULE
from tests.bigquery import PROJECT
from tests.conftest import SEASON_DIR

# The client libraries' pending deprecations (see blocks/warehouse_bigquery.py); pytest shows
# pending deprecations whatever the module filters.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

MAX_BYTES = 123_456_789

OPENING_NIGHT, SECOND_DAY = date(2023, 10, 24), date(2023, 10, 25)
INGESTED = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)

# Small tables of our own: one with a required column, one unpartitioned (an append log).
TEAM_POINTS = TableSpec(
    dataset="nba_test",
    name="team_points",
    columns=(("game_date", "DATE"), ("team_id", "INT64"), ("pts", "INT64"), ("note", "STRING")),
    cluster_by=("team_id",),
    key=("game_date", "team_id"),
    required=("team_id",),
    description="Test table.",
)
EVENTS = TableSpec(
    dataset="nba_test",
    name="events",
    columns=(
        ("logged_at", "TIMESTAMP"), ("name", "STRING"), ("value", "FLOAT64"),
        ("ok", "BOOL"), ("n", "INT64"), ("day", "DATE"),
    ),
    partition_by=None,
)  # fmt: skip


# --- the warehouses --------------------------------------------------------------------------

_prefixes = itertools.count()


def make_warehouse(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """An empty warehouse with the test tables created."""
    if kind == "duckdb":
        from blocks.warehouse_duckdb import DuckDBWarehouse

        wh: Warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    else:
        from blocks.warehouse_bigquery import BigQueryWarehouse

        endpoint = request.getfixturevalue("bigquery_emulator")
        # One emulator for the session: each test gets datasets of its own.
        wh = BigQueryWarehouse(
            project=PROJECT,
            dataset_prefix=f"t{next(_prefixes)}_",
            maximum_bytes_billed=MAX_BYTES,
            api_endpoint=endpoint,
        )
    wh.ensure_tables([RAW_SCHEDULE, TEAM_POINTS, EVENTS])
    return wh


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    return make_warehouse(request.param, request, tmp_path)


@pytest.fixture
def bq(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return make_warehouse("bigquery", request, tmp_path)


# --- data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schedule() -> pd.DataFrame:
    """The bundled schedule, read with pandas: raw-table columns plus provenance."""
    df = pd.read_csv(SEASON_DIR / "schedule.csv.gz", dtype={"GAME_ID": str})
    return df.rename(columns=str.lower).assign(ingested_at=INGESTED, source="test")


def day_of(schedule: pd.DataFrame, day: date) -> pd.DataFrame:
    return schedule[schedule.game_date == day.isoformat()].reset_index(drop=True)


def team_points(*rows: tuple[date, int, int | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=TEAM_POINTS.column_names)


def plain(value: Any) -> Any:
    """A result value as a plain Python value (both warehouses' dtypes differ a little)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime() if value.tzinfo else value.date()
    return value.item() if hasattr(value, "item") else value


def rows(wh: Warehouse, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    df = wh.query(sql, params)
    return sorted(
        (tuple(plain(v) for v in r) for r in df.itertuples(index=False)),
        key=lambda r: tuple((v is None, str(v)) for v in r),
    )


def points_on(wh: Warehouse, day: date) -> list[tuple]:
    return rows(
        wh,
        "SELECT game_date, team_id, pts, note FROM nba_test.team_points WHERE game_date = @d",
        {"d": day},
    )


# --- the contract ----------------------------------------------------------------------------


def test_ensure_tables_is_idempotent_and_keeps_rows(warehouse: Warehouse) -> None:
    opening = team_points((OPENING_NIGHT, 1, 100, "a"))
    warehouse.replace_partition(TEAM_POINTS, OPENING_NIGHT, opening)
    warehouse.ensure_tables([RAW_SCHEDULE, TEAM_POINTS, EVENTS])
    warehouse.ensure_tables([TEAM_POINTS])
    # ensure_tables asks once per process; the creation itself must also be idempotent.
    warehouse._create_tables([RAW_SCHEDULE, TEAM_POINTS, EVENTS])
    assert points_on(warehouse, OPENING_NIGHT) == [(OPENING_NIGHT, 1, 100, "a")]


def test_replace_partitions_writes_the_schedule_rows(
    warehouse: Warehouse, schedule: pd.DataFrame
) -> None:
    day = day_of(schedule, SECOND_DAY)
    assert len(day) > 2  # a real day of games
    written = warehouse.replace_partitions(SECOND_DAY, {RAW_SCHEDULE: day})
    assert written == {"nba_raw.schedule": len(day)}
    got = warehouse.query("SELECT * FROM nba_raw.schedule")
    assert sorted(got.columns) == sorted(RAW_SCHEDULE.column_names)
    got = got.sort_values("game_id").reset_index(drop=True)
    assert got.game_id.tolist() == sorted(day.game_id)
    expected = day.sort_values("game_id").reset_index(drop=True)
    assert [plain(v) for v in got.home_pts] == expected.home_pts.tolist()
    assert [plain(v) for v in got.away_team_name] == expected.away_team_name.tolist()
    assert {plain(v) for v in got.game_date} == {SECOND_DAY}
    assert got.game_date.dtype == "datetime64[us]"  # DATE comes back the same on both
    assert {plain(v) for v in got.ingested_at} == {INGESTED}


def test_writing_a_date_twice_replaces_it(warehouse: Warehouse, schedule: pd.DataFrame) -> None:
    day = day_of(schedule, SECOND_DAY)
    warehouse.replace_partitions(SECOND_DAY, {RAW_SCHEDULE: day})
    warehouse.replace_partitions(SECOND_DAY, {RAW_SCHEDULE: day})
    assert rows(warehouse, "SELECT COUNT(*) FROM nba_raw.schedule") == [(len(day),)]

    first = [(SECOND_DAY, 1, 100, "a"), (SECOND_DAY, 2, 90, "b")]
    second = [(SECOND_DAY, 2, 91, "fixed"), (SECOND_DAY, 3, 80, None), (SECOND_DAY, 4, None, "d")]
    warehouse.replace_partition(TEAM_POINTS, SECOND_DAY, team_points(*first))
    assert warehouse.replace_partition(TEAM_POINTS, SECOND_DAY, team_points(*second)) == 3
    assert points_on(warehouse, SECOND_DAY) == second


def test_other_dates_are_untouched(warehouse: Warehouse, schedule: pd.DataFrame) -> None:
    opening, second = day_of(schedule, OPENING_NIGHT), day_of(schedule, SECOND_DAY)
    warehouse.replace_partitions(OPENING_NIGHT, {RAW_SCHEDULE: opening})
    warehouse.replace_partitions(SECOND_DAY, {RAW_SCHEDULE: second})
    warehouse.replace_partitions(SECOND_DAY, {RAW_SCHEDULE: second.iloc[:1]})
    assert rows(
        warehouse, "SELECT game_date, COUNT(*) FROM nba_raw.schedule GROUP BY game_date"
    ) == [(OPENING_NIGHT, len(opening)), (SECOND_DAY, 1)]
    assert rows(warehouse, "SELECT game_id FROM nba_raw.schedule WHERE game_date = @d",
                {"d": OPENING_NIGHT}) == [(g,) for g in sorted(opening.game_id)]  # fmt: skip


def test_an_empty_frame_empties_the_date(warehouse: Warehouse) -> None:
    opening = team_points((OPENING_NIGHT, 1, 100, "a"))
    warehouse.replace_partition(TEAM_POINTS, OPENING_NIGHT, opening)
    warehouse.replace_partition(TEAM_POINTS, SECOND_DAY, team_points((SECOND_DAY, 2, 90, "b")))
    written = warehouse.replace_partitions(SECOND_DAY, {TEAM_POINTS: team_points()})
    assert written == {"nba_test.team_points": 0}
    assert points_on(warehouse, SECOND_DAY) == []
    assert points_on(warehouse, OPENING_NIGHT) == [(OPENING_NIGHT, 1, 100, "a")]


def test_a_row_on_another_date_raises_and_writes_nothing(warehouse: Warehouse) -> None:
    before = [(SECOND_DAY, 1, 100, "a")]
    warehouse.replace_partition(TEAM_POINTS, SECOND_DAY, team_points(*before))
    stray = team_points((SECOND_DAY, 1, 111, "new"), (OPENING_NIGHT, 2, 99, "stray"))
    with pytest.raises(ValueError, match="other than 2023-10-25"):
        warehouse.replace_partition(TEAM_POINTS, SECOND_DAY, stray)
    assert points_on(warehouse, SECOND_DAY) == before
    assert points_on(warehouse, OPENING_NIGHT) == []


def test_a_bad_frame_in_a_multi_table_call_leaves_its_table_untouched(
    warehouse: Warehouse, schedule: pd.DataFrame
) -> None:
    day = day_of(schedule, OPENING_NIGHT)
    before = [(OPENING_NIGHT, 1, 100, "a")]
    warehouse.replace_partitions(
        OPENING_NIGHT, {RAW_SCHEDULE: day, TEAM_POINTS: team_points(*before)}
    )
    no_team = team_points((OPENING_NIGHT, None, 120, "team_id is required"))
    with pytest.raises(ValueError, match="NULL in required column 'team_id'"):
        warehouse.replace_partitions(
            OPENING_NIGHT, {RAW_SCHEDULE: day.iloc[:1], TEAM_POINTS: no_team}
        )
    assert points_on(warehouse, OPENING_NIGHT) == before
    # Every frame is checked before the first write, so the good table is untouched too.
    assert rows(warehouse, "SELECT COUNT(*) FROM nba_raw.schedule") == [(len(day),)]


def test_query_with_date_int_and_string_parameters(
    warehouse: Warehouse, schedule: pd.DataFrame
) -> None:
    day = day_of(schedule, SECOND_DAY)
    warehouse.replace_partitions(SECOND_DAY, {RAW_SCHEDULE: day})
    team = day.home_team_abbreviation.iloc[0]
    expected = day[(day.home_pts >= 110) | (day.home_team_abbreviation == team)]
    got = rows(
        warehouse,
        "SELECT game_id, home_pts FROM nba_raw.schedule "
        "WHERE game_date = @day AND (home_pts >= @pts OR home_team_abbreviation = @team)",
        {"day": SECOND_DAY, "pts": 110, "team": team},
    )
    assert got == sorted(zip(expected.game_id, expected.home_pts.astype(int), strict=True))
    assert 0 < len(got) < len(day)


def test_table_ref_and_render_qualify_names(warehouse: Warehouse) -> None:
    sql = "SELECT * FROM nba_raw.schedule s JOIN nba_test.team_points p USING (game_date)"
    if warehouse.dialect == "duckdb":
        schedule, points = '"nba_raw"."schedule"', '"nba_test"."team_points"'
    else:
        prefix = warehouse.dataset_prefix  # type: ignore[attr-defined]
        assert prefix
        schedule = f"`{PROJECT}.{prefix}nba_raw.schedule`"
        points = f"`{PROJECT}.{prefix}nba_test.team_points`"
    assert warehouse.table_ref("nba_raw", "schedule") == schedule
    assert warehouse.render(sql) == f"SELECT * FROM {schedule} s JOIN {points} p USING (game_date)"
    # The rendered names resolve in this warehouse.
    assert rows(warehouse, "SELECT COUNT(*) FROM nba_test.team_points") == [(0,)]


def test_append_adds_rows(warehouse: Warehouse) -> None:
    t = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    first = pd.DataFrame({"logged_at": [t], "name": ["a"], "value": [1.5], "ok": [True],
                          "n": [1], "day": [OPENING_NIGHT]})  # fmt: skip
    assert warehouse.append(EVENTS, first) == 1
    assert warehouse.append(EVENTS, first.assign(name="b", n=2)) == 1
    assert warehouse.append(EVENTS, first.iloc[:0]) == 0
    assert rows(warehouse, "SELECT name, n, value, ok, logged_at, day FROM nba_test.events") == [
        ("a", 1, 1.5, True, t, OPENING_NIGHT),
        ("b", 2, 1.5, True, t, OPENING_NIGHT),
    ]


def test_nulls_in_nullable_columns_round_trip(warehouse: Warehouse) -> None:
    nulls = pd.DataFrame({"logged_at": [None], "name": [None], "value": [None], "ok": [None],
                          "n": [None], "day": [None]})  # fmt: skip
    warehouse.append(EVENTS, nulls)
    assert rows(warehouse, "SELECT name, n, value, ok, logged_at, day FROM nba_test.events") == [
        (None, None, None, None, None, None)
    ]
    no_points = team_points((OPENING_NIGHT, 7, None, None))
    warehouse.replace_partition(TEAM_POINTS, OPENING_NIGHT, no_points)
    assert points_on(warehouse, OPENING_NIGHT) == [(OPENING_NIGHT, 7, None, None)]
    assert rows(warehouse, "SELECT COUNT(*) FROM nba_test.team_points WHERE pts IS NULL") == [(1,)]


# --- BigQuery only ---------------------------------------------------------------------------


@pytest.mark.bigquery
def test_bigquery_tables_are_date_partitioned_and_clustered(bq: Any) -> None:
    client = bq.client()
    table = client.get_table(f"{PROJECT}.{bq.dataset_prefix}nba_raw.schedule")
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == "game_date"
    assert table.clustering_fields == ["home_team_id", "away_team_id"]
    assert table.description == RAW_SCHEDULE.description
    assert [f.name for f in table.schema] == RAW_SCHEDULE.column_names
    types = {f.name: f.field_type for f in table.schema}
    assert (types["game_date"], types["home_pts"], types["ingested_at"]) == (
        "DATE", "INTEGER", "TIMESTAMP"
    )  # fmt: skip
    points = client.get_table(f"{PROJECT}.{bq.dataset_prefix}nba_test.team_points")
    assert {f.name: f.mode for f in points.schema} == {
        "game_date": "NULLABLE", "team_id": "REQUIRED", "pts": "NULLABLE", "note": "NULLABLE"
    }  # fmt: skip
    assert points.clustering_fields == ["team_id"]
    events = client.get_table(f"{PROJECT}.{bq.dataset_prefix}nba_test.events")
    assert events.time_partitioning is None
    assert client.get_dataset(f"{PROJECT}.{bq.dataset_prefix}nba_raw").location == "US"


@pytest.mark.bigquery
def test_bigquery_jobs_carry_the_bytes_billed_guard(
    bq: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator accepts but neither stores nor enforces maximumBytesBilled, so the
    requests the client sends are checked."""
    connection = bq.client()._connection
    sent: list[dict[str, Any]] = []
    real = connection.api_request

    def spy(*args: Any, **kwargs: Any) -> Any:
        # jobs.query carries the request at the top level, jobs.insert in configuration.query.
        body = kwargs.get("data") or {}
        if kwargs.get("path", "").endswith("/queries"):
            sent.append(body)
        elif "query" in body.get("configuration", {}):
            sent.append(body["configuration"]["query"])
        return real(*args, **kwargs)

    monkeypatch.setattr(connection, "api_request", spy)
    bq.query("SELECT COUNT(*) FROM nba_test.team_points WHERE game_date = @d", {"d": SECOND_DAY})
    bq.replace_partition(TEAM_POINTS, SECOND_DAY, team_points())  # an empty frame: a DELETE
    assert len(sent) == 2
    assert [q["maximumBytesBilled"] for q in sent] == [str(MAX_BYTES)] * 2
    assert sent[1]["query"].startswith("DELETE FROM")
    assert sent[1]["queryParameters"][0]["parameterType"] == {"type": "DATE"}


@pytest.mark.bigquery
def test_bigquery_parameter_types_are_inferred(bq: Any) -> None:
    import numpy as np

    got = bq.query(
        "SELECT @d AS d, @t AS t, @i AS i, @f AS f, @s AS s, @b AS b, @np AS np, "
        "ARRAY_LENGTH(@ids) AS ids",
        {"d": OPENING_NIGHT, "t": INGESTED, "i": 3, "f": 2.5, "s": "x", "b": True,
         "np": np.int64(7), "ids": ["a", "b"]},
    )  # fmt: skip
    assert [plain(v) for v in got.iloc[0]] == [OPENING_NIGHT, INGESTED, 3, 2.5, "x", True, 7, 2]
    with pytest.raises(ValueError, match="empty list"):
        bq.query("SELECT ARRAY_LENGTH(@ids) AS n", {"ids": []})


@pytest.mark.bigquery
def test_bigquery_large_results_come_back_whole(bq: Any, bigquery_emulator: str) -> None:
    """pandas-gbq reads a large result through a second client of its own, built without our
    client options: it must find the emulator too (a miss would wait on the closed network)."""
    bq.client()
    assert os.environ["BIGQUERY_EMULATOR_HOST"] == bigquery_emulator
    got = bq.query("SELECT x FROM UNNEST(GENERATE_ARRAY(1, 20000)) AS x")
    assert len(got) == 20000
    assert int(got.x.sum()) == 20000 * 20001 // 2


@pytest.mark.bigquery
def test_bigquery_credentials_come_from_a_saved_gcp_credentials_block(
    prefect_api: None, bigquery_emulator: str
) -> None:
    """The block's service account and project are used; the endpoint is still honoured.
    (No request is made: the service account would fetch a token from Google.)"""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account
    from prefect_gcp import GcpCredentials

    from blocks.warehouse_bigquery import BigQueryWarehouse

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    email = "hoopflow@block-project.iam.gserviceaccount.com"
    GcpCredentials(
        service_account_info={
            "type": "service_account", "project_id": "block-project", "private_key_id": "1",
            "private_key": key.decode(), "client_email": email, "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        project="block-project",
    ).save("hoopflow-test-gcp", overwrite=True)  # fmt: skip

    wh = BigQueryWarehouse(credentials_block="hoopflow-test-gcp", api_endpoint=bigquery_emulator)
    client = wh.client()
    assert isinstance(client._credentials, service_account.Credentials)
    assert client._credentials.service_account_email == email
    assert client.project == "block-project"
    assert client._connection.API_BASE_URL == bigquery_emulator
    assert wh.table_ref("nba_raw", "schedule") == "`block-project.nba_raw.schedule`"


# --- DuckDB only -----------------------------------------------------------------------------


def test_duckdb_ledger_row_is_written_in_the_partitions_transaction(tmp_path: Path) -> None:
    """`log=(RUN_LEDGER, row)` goes in with the partition or not at all: a frame that fails
    (to conform before the transaction, or in the database inside it) leaves the partition
    as it was and writes no ledger row."""
    from blocks.warehouse_duckdb import DuckDBWarehouse
    from engine.ledger import RUN_LEDGER, ledger_row

    wh = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    wh.ensure_tables([TEAM_POINTS, RUN_LEDGER])

    def row(fingerprint: str) -> pd.DataFrame:
        return ledger_row("team_points", SECOND_DAY, "succeeded", fingerprint, "v1", INGESTED, 0.1, 2)

    def ledger() -> list[tuple]:
        return rows(wh, "SELECT processor, game_date, status, input_fingerprint, rows_written "
                        "FROM nba_ops.run_ledger")  # fmt: skip

    before = [(SECOND_DAY, 1, 100, "a"), (SECOND_DAY, 2, 90, "b")]
    written = wh.replace_partitions(SECOND_DAY, {TEAM_POINTS: team_points(*before)}, log=(RUN_LEDGER, row("fp1")))
    assert written == {"nba_test.team_points": 2}
    assert points_on(wh, SECOND_DAY) == before
    assert ledger() == [("team_points", SECOND_DAY, "succeeded", "fp1", 2)]

    # A frame that fails to conform (NULL in a required column): neither is written.
    no_team = team_points((SECOND_DAY, None, 120, "team_id is required"))
    with pytest.raises(ValueError, match="NULL in required column 'team_id'"):
        wh.replace_partitions(SECOND_DAY, {TEAM_POINTS: no_team}, log=(RUN_LEDGER, row("fp2")))
    assert points_on(wh, SECOND_DAY) == before
    assert ledger() == [("team_points", SECOND_DAY, "succeeded", "fp1", 2)]

    # A frame that conforms but fails inside the transaction, after team_points' partition
    # was already replaced (its table does not exist): that replacement is rolled back, and
    # no ledger row is left.
    not_created = TableSpec(dataset="nba_test", name="not_created", columns=(("game_date", "DATE"),))
    after = [(SECOND_DAY, 3, 80, "new")]
    frames = {TEAM_POINTS: team_points(*after), not_created: pd.DataFrame({"game_date": [SECOND_DAY]})}
    with pytest.raises(Exception, match="not_created"):
        wh.replace_partitions(SECOND_DAY, frames, log=(RUN_LEDGER, row("fp3")))
    assert points_on(wh, SECOND_DAY) == before
    assert ledger() == [("team_points", SECOND_DAY, "succeeded", "fp1", 2)]

    # The ledger row itself failing inside the transaction (its table missing) rolls the
    # partition back too: the two are one transaction, in both directions.
    no_ledger = TableSpec(dataset="nba_ops", name="no_ledger", columns=RUN_LEDGER.columns,
                          partition_by=None, required=RUN_LEDGER.required)  # fmt: skip
    with pytest.raises(Exception, match="no_ledger"):
        wh.replace_partitions(SECOND_DAY, {TEAM_POINTS: team_points(*after)}, log=(no_ledger, row("fp4")))
    assert points_on(wh, SECOND_DAY) == before
    assert ledger() == [("team_points", SECOND_DAY, "succeeded", "fp1", 2)]

    # And a good write replaces both together.
    wh.replace_partitions(SECOND_DAY, {TEAM_POINTS: team_points(*after)}, log=(RUN_LEDGER, row("fp5")))
    assert points_on(wh, SECOND_DAY) == after
    assert ledger() == [("team_points", SECOND_DAY, "succeeded", "fp1", 2),
                        ("team_points", SECOND_DAY, "succeeded", "fp5", 2)]  # fmt: skip


def test_a_file_held_by_another_process_is_waited_for_saying_so(tmp_path, monkeypatch, caplog) -> None:
    """DuckDB has one writing process per file: another process waits for it, and says once
    what it waits for (it used to wait silently for up to 900 s)."""
    import subprocess
    import sys

    import blocks.warehouse_duckdb as wd

    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
                               "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(wd, "LOCK_WAIT_SECONDS", 1.0)
        with caplog.at_level("WARNING"), pytest.raises(RuntimeError, match="cannot open the DuckDB warehouse"):
            wd.DuckDBWarehouse(path=str(path)).query("SELECT 1")
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]
        assert len(said) == 1 and str(path) in said[0] and "HOOPFLOW_DUCKDB_LOCK_WAIT_SECONDS" in said[0]
    finally:
        holder.kill()
        holder.wait()
