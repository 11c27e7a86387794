"""`hoopflow setup`: what must exist before flows run, created from settings (idempotent).

Today: every warehouse table, and the Prefect rate limit (a global concurrency limit with
slot decay) that every process calling the NBA.com stats API shares."""

from __future__ import annotations

from prefect.client.orchestration import get_client

from hoopflow.settings import Settings


def setup(settings: Settings) -> list[str]:
    """Create or update what hoopflow needs; return one line per thing done."""
    from tasks.backfill import ALL_TABLES

    done = []
    settings.warehouse_block().ensure_tables(ALL_TABLES)
    done.append(f"{len(ALL_TABLES)} warehouse tables ensured ({settings.warehouse})")

    api = settings.nba_api
    with get_client(sync_client=True) as client:
        # One slot that refills at the allowed request rate: a rate limit, not a pool size.
        client.upsert_global_concurrency_limit_by_name(
            api.rate_limit_name, limit=1, slot_decay_per_second=api.requests_per_second
        )
    done.append(
        f"rate limit {api.rate_limit_name!r}: {api.requests_per_second} NBA.com requests per second"
    )
    return done
