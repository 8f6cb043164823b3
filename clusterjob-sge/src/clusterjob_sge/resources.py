"""Translating a job's resources into qsub options for ``#$`` header lines.

Grid Engine has no notion of nodes, processes per node or threads: a job asks
for *slots* of a *parallel environment* (PE), and the PE's
``allocation_rule`` decides how the slots are spread over hosts. This module
maps clusterjob's model onto that (see the README for the rules and the
spec's three parallelization examples).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from clusterjob.backends import (
    ClusterjobBackend,
    SubmissionContext,
    format_option,
    is_dashed,
    positive_int,
    resource_list_names,
)
from clusterjob.rendering import cannot_express, megabytes
from clusterjob.walltime import Walltime

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob_sge.backend import SgeBackend

__all__ = ["HANDLED_KEYS", "JOB_NUMBER", "TAG_CONTEXT", "sge_options", "sge_options_set_by"]

#: Job context variable (``qsub -ac``) that carries the tag, visible in ``qstat -j``.
TAG_CONTEXT = "CLUSTERJOB_TAG"

#: Keys this module translates itself (everything else follows the generic rule).
HANDLED_KEYS = frozenset({*ClusterjobBackend.common_keys, "jobname", "pe"})

#: A Grid Engine job ID: the job number, for an array job followed by its task range.
JOB_NUMBER = re.compile(r"^(\d+)(?:\.[\d:,-]+)?$")

_OUTPUT_OPTIONS = {"stdout": "o", "stderr": "e"}
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Characters Grid Engine refuses in a job name (sge_types(5), object names).
_BAD_NAME_CHARS = set(" \t\r\n/:@\\*?")


def _positive_int(backend: SgeBackend, key: str, value: Any) -> int:
    return positive_int(backend.name, key, value)


def _job_name(backend: SgeBackend, resources: Mapping[str, Any]) -> str:
    name = str(resources["jobname"])
    if "name" in resources and str(resources["name"]) != name:
        raise cannot_express(
            backend.name,
            "name",
            resources["name"],
            f"it differs from jobname={name!r}; set the job name through jobname",
        )
    bad = sorted(set(name) & _BAD_NAME_CHARS)
    if bad:
        raise cannot_express(
            backend.name, "jobname", name, f"Grid Engine job names may not contain {''.join(bad)!r}"
        )
    if name[:1].isdigit():
        raise cannot_express(
            backend.name, "jobname", name, "Grid Engine job names may not start with a digit"
        )
    return name


def _slots(backend: SgeBackend, resources: Mapping[str, Any]) -> list[str]:
    """``-pe NAME SLOTS`` for nodes/ppn/threads (and an explicit ``pe``), or nothing."""
    nodes = _positive_int(backend, "nodes", resources.get("nodes", 1))
    ppn = _positive_int(backend, "ppn", resources.get("ppn", 1))
    threads = _positive_int(backend, "threads", resources.get("threads", 1))
    per_node = ppn * threads
    pe = resources.get("pe")
    if pe is not None:
        pe = str(pe).strip()
        if not pe or any(c.isspace() for c in pe):
            raise cannot_express(
                backend.name,
                "pe",
                resources["pe"],
                "expected the name of one parallel environment (qconf -spl)",
            )
    if nodes == 1:
        if pe is None and per_node == 1:
            return []  # a serial job: one slot, no parallel environment
        if pe is None:
            pe = backend.default_pe
        if pe is None:
            key = "threads" if threads > 1 else "ppn"
            raise cannot_express(
                backend.name,
                key,
                resources.get(key),
                f"{per_node} slots on one host need a parallel environment; "
                "set pe='<a PE with allocation_rule $pe_slots>' (qconf -spl)",
            )
        return ["-pe", pe, str(per_node)]
    if pe is None or pe == backend.default_pe:
        which = (
            f"the parallel environment {pe!r} keeps all slots on one host ($pe_slots)"
            if pe is not None
            else "no parallel environment was named (resource 'pe')"
        )
        raise cannot_express(
            backend.name,
            "nodes",
            nodes,
            "Grid Engine spreads a job over hosts only through a parallel environment whose "
            f"allocation_rule is a fixed number of slots per host, and {which}; "
            f"set pe='<a PE with allocation_rule {per_node}>' (ppn*threads) "
            f"to get nodes={nodes} x {per_node} slots",
        )
    return ["-pe", pe, str(nodes * per_node)]


def _memory(backend: SgeBackend, resources: Mapping[str, Any]) -> list[str]:
    """``-l h_vmem=...M``: clusterjob's mem is per node, Grid Engine's per slot."""
    if resources.get("mem") is None:
        return []
    mem = megabytes(backend.name, resources["mem"])
    per_node = _positive_int(backend, "ppn", resources.get("ppn", 1)) * _positive_int(
        backend, "threads", resources.get("threads", 1)
    )
    per_slot = math.ceil(mem / per_node)
    return ["-l", f"{backend.resource_replacements.get('mem', 'h_vmem')}={per_slot}M"]


def _walltime(backend: SgeBackend, resources: Mapping[str, Any]) -> list[str]:
    if resources.get("time") is None:
        return []
    h_rt = Walltime.read(backend.name, resources["time"]).hours_minutes_seconds()
    return ["-l", f"{backend.resource_replacements.get('time', 'h_rt')}={h_rt}"]


def _ids(value: Any) -> list[str]:
    """The job IDs of a ``hold_jid`` resource (``'11,12'``)."""
    if value is None or value is False:
        return []
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _job_numbers(backend: SgeBackend, job_ids: Sequence[str]) -> list[str]:
    """The job numbers of ``submit(after=...)`` (an array job's number without its task range)."""
    numbers = []
    for job_id in job_ids:
        match = JOB_NUMBER.match(str(job_id).strip())
        if not match:
            raise cannot_express(
                backend.name, "after", list(job_ids), f"{job_id!r} is not a Grid Engine job number"
            )
        numbers.append(match.group(1))
    return numbers


def generic_option(backend: SgeBackend, key: str, value: Any) -> list[str]:
    """The documented rule, adapted to qsub: every option takes one dash.

    ``hold_jid='12'`` -> ``-hold_jid 12``, ``V=True`` -> ``-V``, ``False``/``None``
    -> nothing.
    """
    if is_dashed(key):
        return dashed_option(backend, key, value)
    if not _OPTION_NAME.match(key):
        raise cannot_express(
            backend.name, key, value, "a qsub option name consists of letters, digits and '_'"
        )
    if value is None or value is False:
        return []
    if value is True:
        return [f"-{key}"]
    return [f"-{key}", backend.quote(key, value)]


def dashed_option(backend: SgeBackend, key: str, value: Any) -> list[str]:
    """A key given with its dashes, as it stands: ``-pe = mpi 8`` -> ``-pe mpi 8``,
    ``--x = 1`` -> ``--x=1``.

    ``-pe`` is the one qsub option with two arguments (the environment and
    the slot range): its value is written as two words. Other values are
    quoted like any value.
    """
    if key == "-pe" and value is not True and value is not False and value is not None:
        return [key, *(backend.quote(key, word) for word in str(value).split())]
    return format_option(key, value, quote=lambda text: backend.quote(key, text))


def sge_options_set_by(backend: SgeBackend, key: str, value: Any) -> set[str] | None:
    """The options of the keys Grid Engine writes its own way, or None for the base class's rule.

    ``-l`` resources count by name (``time`` -> ``-l h_rt``, ``mem`` -> ``-l
    h_vmem``); nodes/ppn/threads set ``-pe`` when they ask for more than one
    slot, ``pe`` always.
    """
    repl = backend.resource_replacements
    if key in ("l", "-l"):
        return {f"-l {name}" for name in resource_list_names(value)}
    if key in ("time", "mem"):
        return {f"-l {repl.get(key, 'h_rt' if key == 'time' else 'h_vmem')}"}
    if key == "pe":
        return {"-pe"}
    if key in ("nodes", "ppn", "threads"):
        try:
            return {"-pe"} if int(str(value).strip()) > 1 else set()
        except ValueError:
            return set()  # refused with its own message when the header is written
    return None


def _shell(backend: SgeBackend, shell: str, resources: Mapping[str, Any]) -> str:
    """The job's shell for ``-S``; an ``S`` (or ``-S``) resource must name the same one."""
    given = resources.get("S")
    if given is not None and given is not False and str(given) != shell:
        raise cannot_express(
            backend.name,
            "S",
            given,
            f"the job's shell is {shell!r} (its #! line and qsub -S); set the attribute "
            f"shell = {given} ([Attributes] of the INI file) instead of the -S option",
        )
    return shell


def sge_options(
    backend: SgeBackend, resources: Mapping[str, Any], context: SubmissionContext, shell: str
) -> list[list[str]]:
    """The qsub options for a job with ``resources``, one list per ``#$`` line, in a fixed order.

    Job name, shell (``-S``, always: Grid Engine may otherwise start the
    script with the queue's shell), working directory (``-cwd`` unless the job
    sets ``cwd``/``wd`` itself: clusterjob submits from rootdir/workdir and
    the job should run there, as with the other schedulers), queue, walltime,
    parallel environment, memory, output files, then the submission's tag
    (``context.tag``: account string ``-A``, unless the job sets its own, and
    job context ``-ac``), the jobs of ``after=`` (``-hold_jid``, merged with
    the job's own) and all other keys sorted by name.
    """
    repl = backend.resource_replacements
    lines: list[list[str]] = [
        [f"-{repl.get('jobname', 'N')}", backend.quote("jobname", _job_name(backend, resources))]
    ]
    lines.append(["-S", backend.quote("shell", _shell(backend, shell, resources))])
    if "cwd" not in resources and "wd" not in resources:
        lines.append(["-cwd"])
    if resources.get("queue") is not None:
        lines.append([f"-{repl.get('queue', 'q')}", backend.quote("queue", resources["queue"])])
    for args in (
        _walltime(backend, resources),
        _slots(backend, resources),
        _memory(backend, resources),
    ):
        if args:
            lines.append(args)
    for key in ("stdout", "stderr"):
        if resources.get(key) is not None:
            lines.append(
                [f"-{repl.get(key, _OUTPUT_OPTIONS[key])}", backend.quote(key, resources[key])]
            )
    tag = context.tag
    if tag is not None:
        if resources.get("A") is None:  # the user's own account string wins
            lines.append(["-A", backend.quote("A", tag)])
        lines.append(["-ac", backend.quote("ac", f"{TAG_CONTEXT}={tag}")])
    after = _job_numbers(backend, context.after)
    if after:
        merged = list(dict.fromkeys(_ids(resources.get("hold_jid")) + after))
        lines.append(["-hold_jid", backend.quote("hold_jid", ",".join(merged))])
    for key in sorted(k for k in resources if k not in HANDLED_KEYS and k != "S"):
        if key == "hold_jid" and after:
            continue
        args = generic_option(backend, key, resources[key])
        if args:
            lines.append(args)
    return lines
