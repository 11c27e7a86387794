"""The one logger every layer uses for what it reports."""

from __future__ import annotations

import logging

from prefect.logging import get_run_logger


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task (its lines reach the UI), else a plain one
    (the direct runner, the CLI's planning)."""
    try:
        return get_run_logger()
    except Exception:  # no run context
        return logging.getLogger("hoopflow")
