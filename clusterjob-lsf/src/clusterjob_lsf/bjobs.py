"""Reading ``bjobs -o`` output.

The status command asks for ``jobid stat exit_code exit_reason`` with ``|``
as delimiter and no header (IBM Spectrum LSF 10.1 Command Reference,
``bjobs -o``: custom output fields, ``delimiter='character'``; ``-noheader``).
Each job is one line, ``1234|DONE|-|-`` for a job that succeeded, or
``1235|EXIT|130|<reason>`` for one that did not, where the reason names the
LSF termination reason. Fields without a value are printed as ``-`` (and
some LSF versions print nothing). Jobs that are not found are reported on
stderr (``Job <1236> is not found``), with a non-zero exit code, while the
jobs that are found are still listed; so the listed records are what counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clusterjob.backends.output import output_lines

__all__ = ["STATUS_FORMAT", "TAG_FORMAT", "BjobsRecord", "killed_by_user", "parse_bjobs"]

#: ``bjobs -o`` format of the status command.
STATUS_FORMAT = "jobid stat exit_code exit_reason delimiter='|'"
#: ``bjobs -o`` format of the tag lookup.
TAG_FORMAT = "jobid job_description delimiter='|'"

#: Termination reasons of a job killed with ``bkill`` by its owner or an
#: administrator (IBM Spectrum LSF 10.1, "Termination reasons displayed by
#: bacct, bhist, and bjobs": TERM_OWNER "Job killed by owner", TERM_FORCE_OWNER
#: "... without time for cleanup", TERM_ADMIN/TERM_FORCE_ADMIN "Job killed by
#: root or LSF administrator"). Matched as keyword or as its description.
_KILLED_BY_USER = re.compile(
    r"TERM_(?:FORCE_)?(?:OWNER|ADMIN)\b"
    r"|killed by (?:the )?owner"
    r"|killed by root or LSF administrator",
    re.IGNORECASE,
)


@dataclass
class BjobsRecord:
    """One line of :data:`STATUS_FORMAT` output."""

    job_id: str
    stat: str
    exit_code: str | None
    exit_reason: str | None


def _value(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", "-") else text


def parse_bjobs(response: str) -> dict[str, BjobsRecord]:
    """Records by job ID; lines that are not job records (a login banner) are skipped."""
    records: dict[str, BjobsRecord] = {}
    for line in output_lines(response):
        parts = line.split("|", 3)
        if len(parts) < 2 or not re.match(r"^\d+(\[\d+\])?$", parts[0].strip()):
            continue
        parts += [""] * (4 - len(parts))
        job_id = parts[0].strip()
        records[job_id] = BjobsRecord(
            job_id, parts[1].strip().upper(), _value(parts[2]), _value(parts[3])
        )
    return records


def killed_by_user(record: BjobsRecord) -> bool:
    """Whether an EXIT job was killed with ``bkill`` (by its owner or an administrator)."""
    return bool(record.exit_reason and _KILLED_BY_USER.search(record.exit_reason))
