"""Reading ``bjobs -o`` output.

The status command asks for ``jobid stat exit_code exit_reason job_name`` with
``|`` as delimiter and no header (IBM Spectrum LSF 10.1 Command Reference,
``bjobs -o``: custom output fields, ``delimiter='character'``; ``-noheader``).
Each job is one line, ``1234|DONE|-|-|name`` for a job that succeeded, or
``1235|EXIT|130|<reason>|name`` for one that did not, where the reason names the
LSF termination reason. Fields without a value are printed as ``-`` (and
some LSF versions print nothing). Jobs that are not found are reported on
stderr (``Job <1236> is not found``), with a non-zero exit code, while the
jobs that are found are still listed; so the listed records are what counts.

Each element of a job array is a line of its own. Its JOBID is the array's
(``1240``) unless the site sets ``LSB_BJOBS_DISPLAY_ENH=Y`` (lsf.conf), which
prints ``1240[3]``; its name is the array's name with the element's index,
``sweep[3]`` (bsub -J ``"name[index_list]"``): so the job name, asked for last
because a name is the one free text of the line, tells the element either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clusterjob.backends.output import output_lines

__all__ = [
    "STATUS_FORMAT",
    "TAG_FORMAT",
    "BjobsRecord",
    "array_id",
    "killed_by_user",
    "parse_bjobs",
    "parse_job_id",
]

#: ``bjobs -o`` format of the status command.
STATUS_FORMAT = "jobid stat exit_code exit_reason job_name delimiter='|'"
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

#: A job ID as bjobs prints it and as clusterjob records it: ``1240``, or ``1240[3]`` for an
#: element of a job array.
_JOB_ID = re.compile(r"(\d+)(?:\[(\d+)\])?")
#: The index at the end of an array element's job name (``sweep[3]``).
_ELEMENT_INDEX = re.compile(r"\[(\d+)\]$")


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


def parse_job_id(text: str) -> tuple[str, str | None] | None:
    """``("1240", "3")`` for ``1240[3]``, ``("1240", None)`` for ``1240``; None for no job ID."""
    match = _JOB_ID.fullmatch(text.strip())
    return (match.group(1), match.group(2)) if match else None


def array_id(job_id: str) -> str:
    """The job ID of the array an element ID (``1240[3]``) belongs to; any other ID unchanged."""
    parsed = parse_job_id(job_id)
    return parsed[0] if parsed else job_id


def parse_bjobs(response: str) -> dict[str, BjobsRecord]:
    """Records by job ID (``1240[3]`` for an array element); lines that are not job records (a
    login banner) are skipped.

    A line that ends early (fields an LSF version leaves out) is read as far as it goes.
    """
    records: dict[str, BjobsRecord] = {}
    for line in output_lines(response):
        parts = line.split("|")
        parsed = parse_job_id(parts[0]) if len(parts) >= 2 else None
        if parsed is None:
            continue
        parts += [""] * (4 - len(parts))
        name = parts[-1].strip() if len(parts) > 4 else ""
        reason = "|".join(parts[3:-1] if len(parts) > 4 else parts[3:])
        number, index = parsed
        element = _ELEMENT_INDEX.search(name)
        if index is None and element:
            index = element.group(1)
        job_id = f"{number}[{index}]" if index is not None else number
        records[job_id] = BjobsRecord(
            job_id, parts[1].strip().upper(), _value(parts[2]), _value(reason)
        )
    return records


def killed_by_user(record: BjobsRecord) -> bool:
    """Whether an EXIT job was killed with ``bkill`` (by its owner or an administrator)."""
    return bool(record.exit_reason and _KILLED_BY_USER.search(record.exit_reason))
