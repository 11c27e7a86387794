"""What every processor task shares: its cache policy, its retry policy, its code version."""

from __future__ import annotations

import hashlib
import inspect
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS, CachePolicy
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from blocks.sources import TransientSourceError
from hoopflow import __version__


@lru_cache(maxsize=None)
def module_code_version(module_name: str) -> str:
    """A hash of a task module's source and the .sql files beside it: any edit to a
    processor's formulas or SQL changes its version, and so its cache keys."""
    module = sys.modules[module_name]
    path = Path(inspect.getfile(module))
    digest = hashlib.sha256(__version__.encode())
    digest.update(path.read_bytes())
    for sql in sorted(path.parent.glob(f"{path.stem}*.sql")):
        digest.update(sql.name.encode())
        digest.update(sql.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class CodeVersion(CachePolicy):
    """Cache-key part: which processor this is and the code version of its module."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        fn = task_ctx.task.fn
        return f"{fn.__module__}.{fn.__qualname__}:{module_code_version(fn.__module__)}"


# A (processor, date) run is cached on: its task (processor), its inputs (the date and the
# fingerprint of the partitions it reads, passed explicitly) and its code version (DESIGN §5).
PROCESSOR_CACHE = INPUTS + CodeVersion()


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what may pass by itself: timeouts, 429, 5xx. Bad data is never retried."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, (TransientSourceError, TimeoutError, ConnectionError))


TRANSIENT_RETRIES = dict(
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),  # 2, 4, 8, 16 s
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
)
