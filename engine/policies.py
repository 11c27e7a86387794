"""What every processor task shares: its retry policy and its code version.

Whether a (processor, date) is done is not a task cache's answer: the planner reads the run
ledger, which lives in the warehouse beside the partitions it describes and is checked
against them (engine.ledger.latest_runs), keyed as a cache would be: processor, date, input
fingerprint, code version. A Prefect cache record lives in the results storage instead, so it
would answer "done" for a lost, restored or recreated warehouse; the processor tasks
therefore run what the planner sends them, uncached."""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from blocks.sources import RETRY_DELAYS, RETRY_JITTER, TRANSIENT_ERRORS

# Code under these packages is followed when versioning a compute function.
PROJECT_PACKAGES = ("tasks", "engine", "blocks")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):  # fmt: skip
                node.body = body[1:] or [ast.Pass()]
    return tree


def _is_project(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in PROJECT_PACKAGES


def _constant_text(value: Any) -> str | None:
    """How a module-level value a formula uses enters its version (None: not a constant)."""
    identity = getattr(value, "code_identity", None)
    if callable(identity) and not isinstance(value, type):
        return identity()  # e.g. a TableSpec: its id and columns, not its description
    if isinstance(value, (int, float, str, bool, bytes, type(None))):
        return repr(value)
    if isinstance(value, (tuple, frozenset)) and all(_constant_text(v) is not None for v in value):
        return "(" + ",".join(_constant_text(v) or "" for v in value) + ")"
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return repr(value)
    return None


def code_version(fn: Callable[..., Any], sql: Iterable[Path] = ()) -> str:
    """A hash of a compute function's own code: its syntax tree without docstrings or
    comments, the project functions and classes it calls (followed transitively), the
    module-level constants it uses, and its SQL files. Editing anything else in the module
    (a docstring, a table description, another processor) leaves it unchanged."""
    digest = hashlib.sha256(version("hoopflow").encode())
    seen: set[int] = set()

    def visit(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        target = inspect.unwrap(obj)
        if getattr(target, "__name__", "") == "<lambda>":  # a lambda is in the tree that holds it
            return
        tree = _strip_docstrings(ast.parse(textwrap.dedent(inspect.getsource(target))))
        digest.update(target.__qualname__.encode())
        digest.update(ast.dump(tree, include_attributes=False).encode())
        scope = getattr(target, "__globals__", None) or vars(inspect.getmodule(target))
        for node in ast.walk(tree):
            value = _resolve(node, scope)
            if value is _MISSING:
                continue
            if isinstance(value, (types.FunctionType, type)) and _is_project(value):
                visit(value)
            elif (text := _constant_text(value)) is not None and isinstance(node, (ast.Name, ast.Attribute)):
                digest.update(f"{ast.unparse(node)}={text}".encode())

    visit(fn)
    for path in sorted(sql):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_MISSING = object()


def _resolve(node: ast.AST, scope: dict[str, Any]) -> Any:
    """The object a name or a `module.attr` chain refers to, or _MISSING."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        if node.id.startswith("__"):  # the module's own dunders (__name__): not a formula's
            return _MISSING
        return scope.get(node.id, _MISSING)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        base = scope.get(node.value.id, _MISSING)
        if isinstance(base, types.ModuleType) and base.__name__.split(".")[0] in PROJECT_PACKAGES:
            return getattr(base, node.attr, _MISSING)
    return _MISSING


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what may pass by itself: timeouts, 429, 5xx. Bad data is never retried."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, TRANSIENT_ERRORS)


# The source retry policy (blocks.sources) as a Prefect task's: a processor that calls a
# source retries as a task, visible in the UI (AwaitingRetry), by the same numbers.
TRANSIENT_RETRIES = dict(
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=list(RETRY_DELAYS),
    retry_jitter_factor=RETRY_JITTER,
    retry_condition_fn=is_transient,
)


@lru_cache(maxsize=None)
def module_code_version(module_name: str) -> str:
    """A hash of a whole module's source (the ml phase's model code: one module, one
    version)."""
    import sys

    path = Path(inspect.getfile(sys.modules[module_name]))
    digest = hashlib.sha256(version("hoopflow").encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
