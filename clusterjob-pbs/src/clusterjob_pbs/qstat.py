"""Reading ``qstat -f`` output into job records, and job records into status codes.

Four producers write "full" job status, and :func:`parse_qstat_full` reads them all:

* **PBS Professional / OpenPBS** (``qstat -f`` and ``qstat -x -f``): a
  ``Job Id: <id>`` line, then one ``    name = value`` line per attribute
  (four spaces). Long values are broken after a comma or at the line limit
  and continue on lines that start with a tab (``prt_attr`` in OpenPBS
  ``src/cmds/qstat.c``). Finished jobs show ``job_state = F``, a
  ``substate`` (91 terminated by ``qdel``, 92 finished, 93 failed, 94 moved)
  and ``Exit_status``.
* **TORQUE** ``qstat -f``: the same layout (TORQUE ``src/cmds/qstat.c``);
  completed jobs show ``job_state = C`` and ``exit_status``.
* **TORQUE** ``qstat -x``: the same attributes as XML,
  ``<Data><Job><Job_Id>…</Job_Id><job_state>C</job_state>…</Job></Data>``,
  resources nested (``<Resource_List><walltime>…``).
* **SLURM's TORQUE wrappers** (``slurm-wlm-torque``): ``Job Id:<TAB><id>``
  and attributes indented by a tab, no continuation lines, no exit status,
  and ``job_state = C`` for every ended job (COMPLETED, FAILED, CANCELLED,
  TIMEOUT alike).

LPBS's ``lqstat -f`` writes the PBS layout without ``job_state``: a job is
listed while it runs, and forgotten once it ends.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from xml.etree import ElementTree

from clusterjob.backends.output import clean_output
from clusterjob.status import CANCELLED, COMPLETED, FAILED

__all__ = [
    "PBS_PRO_SUBSTATES",
    "SIGNAL_EXIT_BASE",
    "QstatJob",
    "array_of_subjob",
    "finished_status",
    "parse_qstat_full",
    "sequence_number",
    "subjob_id",
]

logger = logging.getLogger("clusterjob.pbs")

#: Layouts of ``qstat -f`` output (see the module docstring).
PBS_TEXT = "pbs"
PBS_XML = "xml"
SLURM_TORQUE = "slurm-torque"

#: TORQUE and PBS Pro report a job killed by signal N with exit status 256 + N
#: (``exiteval = WTERMSIG(statloc) + 0x100`` in both ``resmom/linux/mom_start.c``).
SIGNAL_EXIT_BASE = 256
#: The signal ``qdel`` sends first.
SIGTERM = 15

#: PBS Pro substates of finished (history) jobs: ``src/include/job.h``
#: (JOB_SUBSTATE_TERMINATED/FINISHED/FAILED/MOVED), set in
#: ``svr_jobfunc.c``: "terminated by deljob batch request" -> 91, "exited with
#: non-zero exit status" -> 93, otherwise 92.
PBS_PRO_SUBSTATES = {"91": CANCELLED, "92": COMPLETED, "93": FAILED}

_JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)\s*$")

#: An array job's ID as ``qsub`` prints it (``123[].server``), and a task's (``123[4].server``).
_ARRAY_ID = re.compile(r"(\d+)\[\](.*)")
_SUBJOB_ID = re.compile(r"(\d+)\[(\d+)\](.*)")


@dataclass
class QstatJob:
    """One job of ``qstat -f`` output.

    Attributes:
        job_id: the identifier after ``Job Id:`` (``123.server``, ``123[].server``, ``123``).
        attributes: attribute values by lower-cased name (``job_state``,
            ``exit_status``, ``resource_list.walltime``, ``variable_list``, …);
            PBS Pro's ``Exit_status`` and TORQUE's ``exit_status`` are the same key.
        layout: which producer wrote it: ``"pbs"``, ``"xml"`` or ``"slurm-torque"``.
    """

    job_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    layout: str = PBS_TEXT

    def get(self, name: str) -> str | None:
        """The value of attribute ``name`` (case-insensitive), or None."""
        return self.attributes.get(name.lower())

    @property
    def state(self) -> str | None:
        """The single-letter ``job_state``, or None if the output has none (LPBS)."""
        value = self.get("job_state")
        return value.strip()[:1] or None if value else None

    def variables(self) -> dict[str, str]:
        """``Variable_List`` as a dict (PBS escapes commas inside values with a backslash)."""
        text = self.get("variable_list")
        if not text:
            return {}
        result: dict[str, str] = {}
        for item in re.split(r"(?<!\\),", text):
            name, sep, value = item.partition("=")
            if sep:
                result[name.strip()] = value.replace("\\,", ",")
        return result


def sequence_number(job_id: str) -> str:
    """The part of a PBS job ID before the server name: ``'123[].srv.org'`` -> ``'123[]'``.

    Job IDs are unique per server, and ``qsub`` and ``qstat`` may spell the
    server differently (short or fully qualified), so runs are matched to
    ``qstat`` records by this part.
    """
    return job_id.strip().split(".", 1)[0]


def subjob_id(array_id: str, index: int) -> str | None:
    """The ID of task ``index`` of the array ``array_id``: ``('123[].srv', 4)`` -> ``'123[4].srv'``.

    TORQUE (``qsub -t``) and PBS Professional (``qsub -J``) print an array's
    ID with empty brackets and name its tasks with the index in them (TORQUE
    Administrator Guide, "Job arrays"; PBS Professional Reference Guide,
    qstat "Job Identifier Operands"). None if ``array_id`` is not an array's ID.
    """
    match = _ARRAY_ID.fullmatch(array_id.strip())
    return f"{match.group(1)}[{index}]{match.group(2)}" if match else None


def array_of_subjob(job_id: str) -> str | None:
    """The array a task belongs to: ``'123[4].srv'`` -> ``'123[].srv'``; None for any other ID."""
    match = _SUBJOB_ID.fullmatch(job_id.strip())
    return f"{match.group(1)}[]{match.group(3)}" if match else None


def parse_qstat_full(text: str) -> list[QstatJob]:
    """All jobs in ``qstat -f`` (or ``qstat -x``/``lqstat -f``) output, in order.

    Lines before the first ``Job Id:`` (a login banner, or anything that is
    not job status), blank lines, lines that are no attribute, and terminal
    escape sequences are ignored, so an empty list means "no job in this output".
    """
    text = clean_output(text)
    start = text.find("<Data")
    if start >= 0:
        return _parse_xml(text[start:])
    return _parse_text(text)


def _parse_text(text: str) -> list[QstatJob]:
    jobs: list[QstatJob] = []
    job: QstatJob | None = None
    last: str | None = None
    layout: str | None = None
    for line in text.splitlines():
        match = _JOB_ID_LINE.match(line)
        if match:
            job = QstatJob(match.group(1))
            jobs.append(job)
            last, layout = None, None
            continue
        if job is None or not line.strip():
            continue
        if layout is None:
            if " = " not in line:
                continue  # no attribute (and no continuation before the first one)
            # The first attribute line tells the layout: the wrappers indent with a tab.
            layout = SLURM_TORQUE if line.startswith("\t") else PBS_TEXT
            job.layout = layout
        if line.startswith("\t") and layout == PBS_TEXT:
            if last is not None:  # continuation of a long value
                job.attributes[last] += line[1:]
            continue
        name, sep, value = line.strip().partition(" = ")
        if sep:
            last = name.strip().lower()
            job.attributes[last] = value
    return jobs


def _parse_xml(text: str) -> list[QstatJob]:
    end = text.rfind("</Data>")
    if end >= 0:
        text = text[: end + len("</Data>")]
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        logger.warning("cannot read qstat XML output (%s): %.200s", exc, text)
        return []
    jobs = []
    for element in root.iter("Job"):
        job_id = (element.findtext("Job_Id") or "").strip()
        if not job_id:
            continue
        job = QstatJob(job_id, layout=PBS_XML)
        for child in element:
            if len(child):
                for sub in child:
                    job.attributes[f"{child.tag}.{sub.tag}".lower()] = (sub.text or "").strip()
            elif child.tag != "Job_Id":
                job.attributes[child.tag.lower()] = (child.text or "").strip()
        jobs.append(job)
    return jobs


def finished_status(job: QstatJob) -> int:
    """COMPLETED, CANCELLED or FAILED for a job in a finished state (C, F, X).

    In order of precedence:

    1. PBS Pro ``substate`` 91/92/93 (terminated by ``qdel`` / finished / failed).
    2. The exit status (``Exit_status``/``exit_status``): 0 is COMPLETED;
       256 + SIGTERM (271, what ``qdel`` leaves in TORQUE when the job dies
       on the signal) is CANCELLED; anything else FAILED, including the
       negative codes PBS uses for jobs it killed or could not start (TORQUE
       -11 = walltime exceeded, -10 = memory; PBS Pro -29 walltime, -27 memory).
    3. No exit status: TORQUE and PBS set one for every job that ran, so the
       job was deleted before it started (or skipped because a dependency
       failed): CANCELLED. SLURM's TORQUE wrappers never report one; there
       the job is taken as COMPLETED and a warning says that failures cannot
       be seen (use the ``slurm`` backend on such a cluster).
    """
    substate = (job.get("substate") or "").strip()
    if substate in PBS_PRO_SUBSTATES:
        return PBS_PRO_SUBSTATES[substate]
    exit_text = job.get("exit_status")
    if exit_text is not None and exit_text.strip():
        try:
            code = int(exit_text.strip())
        except ValueError:
            logger.warning(
                "job %s has a non-numeric exit status %r; taking it as FAILED",
                job.job_id,
                exit_text,
            )
            return FAILED
        if code == 0:
            return COMPLETED
        if code == SIGNAL_EXIT_BASE + SIGTERM:
            return CANCELLED
        return FAILED
    if job.layout == SLURM_TORQUE:
        logger.warning(
            "job %s: qstat comes from SLURM's TORQUE wrappers, which report every ended job as "
            "'C' without an exit status; reporting COMPLETED (failures and cancellations cannot "
            "be told apart here: use the 'slurm' backend for exact outcomes)",
            job.job_id,
        )
        return COMPLETED
    return CANCELLED
