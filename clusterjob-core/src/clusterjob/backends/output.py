"""Reading a scheduler command's output through what the login shell adds to it.

On a real cluster the stdout of ``sbatch``, ``qsub`` or ``bjobs`` (locally, and
even more over SSH) is not only the scheduler's: site profiles print banners
(``Last login: ...``, ``Welcome to cluster X (2 nodes)``), ``.bashrc`` sets the
terminal title with an escape sequence that has no line break of its own, a
module system colours its messages, a terminal turns line ends into ``\\r\\n``.
Every backend reads its answers through :func:`clean_output`, and finds the job
ID of a submission with :func:`find_job_id`, which takes only a whole line in
one of the forms the scheduler prints, and refuses to choose between two IDs.
"""

from __future__ import annotations

import logging
import re

__all__ = ["clean_output", "find_job_id", "output_lines"]

logger = logging.getLogger("clusterjob")

#: Terminal control sequences (ECMA-48): CSI (``ESC [ ... final``: colours, cursor
#: moves; also its 8-bit form), command strings (``ESC ] 0;title BEL``: window
#: titles; DCS, PM, APC) up to their terminator or the end of the line, and
#: two-byte escapes with intermediates (``ESC ( B``: character set).
_CONTROL_SEQUENCE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[ -/]*[0-~]
    """,
    re.VERBOSE,
)
#: Control characters left over (BEL, backspace, a lone ESC, C1 codes); tab and line feed stay.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_output(text: str) -> str:
    """``text`` without terminal control sequences and with ``\\n`` as the only line end.

    A carriage return ends a line (``\\r\\n`` from a terminal, or a progress
    message overwritten in place), so what followed it is a line of its own.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_CHARACTER.sub("", _CONTROL_SEQUENCE.sub("", text))


def output_lines(text: str) -> list[str]:
    """The non-blank lines of :func:`clean_output` ``(text)``, stripped."""
    return [line.strip() for line in clean_output(text).splitlines() if line.strip()]


def find_job_id(response: str, *forms: re.Pattern[str]) -> str | None:
    """The job ID that a line of ``response`` states in one of ``forms``, or None.

    Each form is a pattern that must match a whole (stripped) line; the ID is
    its first group, or the whole line if it has none. Forms are tried in
    order and the first that matches any line decides, so a distinctive form
    (``Submitted batch job 123``) wins over a bare number that a banner could
    also print. If the deciding form gives two different IDs, the output does
    not say which job was submitted: None, and core raises
    :class:`~clusterjob.errors.SubmitError` (the submission intent is kept,
    so the next ``submit()`` finds the job by its tag). A line that merely
    contains a number (``Welcome to cluster X (2 nodes)``) is never an ID.
    """
    lines = output_lines(response)
    for form in forms:
        found = list(
            dict.fromkeys(_id_of(match) for line in lines if (match := form.fullmatch(line)))
        )
        if len(found) == 1:
            return found[0]
        if found:
            logger.warning(
                "the submission output names several job IDs (%s) and does not say which one "
                "is the job just submitted; taking none. Output: %r",
                ", ".join(found), response.strip()[-500:],
            )  # fmt: skip
            return None
    return None


def _id_of(match: re.Match[str]) -> str:
    return match.group(1) if match.re.groups else match.group(0)
