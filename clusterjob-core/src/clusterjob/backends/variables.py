"""``$CLUSTERJOB_*`` in a job body, written as the scheduler's own variables."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["CORE_VARIABLES", "replace_core_variables"]

#: The core environment variables every backend maps to its scheduler's names.
CORE_VARIABLES: tuple[str, ...] = (
    "CLUSTERJOB_ID",
    "CLUSTERJOB_WORKDIR",
    "CLUSTERJOB_SUBMIT_HOST",
    "CLUSTERJOB_NAME",
    "CLUSTERJOB_NODELIST",
)


def _var_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\$(?:\{" + name + r"\}|" + name + r"(?![A-Za-z0-9_]))")


def _variable_replacement(native_name: str) -> Callable[[re.Match[str]], str]:
    """Keep the form the body used: ``$X`` stays bare, ``${X}`` keeps its braces."""
    return lambda match: (
        "${" + native_name + "}" if match.group(0).startswith("${") else "$" + native_name
    )


def replace_core_variables(body: str, job_vars: Mapping[str, str]) -> str:
    """``body`` with ``$CLUSTERJOB_X`` and ``${CLUSTERJOB_X}`` in the names ``job_vars`` gives."""
    for core, native in job_vars.items():
        native_name = native.lstrip("$")
        body = _var_pattern(core.lstrip("$")).sub(_variable_replacement(native_name), body)
    return body
