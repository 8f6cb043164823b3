"""The resource header lines a backend writes, for resources given as keywords or in an INI file."""

from __future__ import annotations

import re
import textwrap
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from clusterjob import JobScript
from clusterjob.backends import ClusterjobBackend, ResourcesNotSupportedError, SubmissionContext


def headers(
    backend: str | ClusterjobBackend, context: SubmissionContext | None = None, **resources: Any
) -> list[str]:
    """The header lines of a job named ``job`` (or ``jobname``) with ``resources``, rendered by
    ``backend``: an installed backend's name, or an instance a test configured itself."""
    name = backend if isinstance(backend, str) else backend.name
    job = JobScript("true", backend=name, **{"jobname": "job", **resources})
    renderer = job._get_backend() if isinstance(backend, str) else backend
    return renderer.resource_headers(job, context)


def ini_headers(
    backend: str,
    tmp_path: Path,
    resources: str,
    context: SubmissionContext | None = None,
    **attributes: Any,
) -> list[str]:
    """The header lines of a job named ``job`` (or ``jobname``) whose ``[Resources]`` section is
    ``resources`` (dedented), read by ``read_settings`` as an INI file written for the original
    clusterjob; ``attributes`` are given to the JobScript."""
    path = tmp_path / "job.ini"
    path.write_text("[Resources]\n" + textwrap.dedent(resources))
    job = JobScript("true", backend=backend, **{"jobname": "job", **attributes})
    job.read_settings(str(path))
    return job._get_backend().resource_headers(job, context)


def refused(
    backend: str, message: str
) -> AbstractContextManager[pytest.ExceptionInfo[ResourcesNotSupportedError]]:
    """Expects the refusal of ``backend`` whose message starts ``cannot express <message>``."""
    return pytest.raises(
        ResourcesNotSupportedError,
        match=f"^backend '{backend}' cannot express " + re.escape(message),
    )
