"""``clusterjob submit`` and ``clusterjob render``: a job from a script file and INI settings.

The job is a :class:`~clusterjob.JobScript` whose body is the script file.
Settings apply in this order, each overriding the one before: the INI files of
``--ini`` (in the order given, read by :meth:`clusterjob.JobScript.read_defaults`,
so ``cache_folder`` and ``cache_prefix`` may be set there too), then
``--backend``, ``--remote``, ``--cache-folder`` and the ``-r KEY=VALUE``
resources. The job name is ``-r jobname=...``, else the INI files' ``jobname``,
else the script's file name without its extension. The rendered script is
written as ``<name>.job.<extension>`` (unless an INI file sets ``filename``), so
it never replaces the script it was made from.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
import types
from collections import OrderedDict
from typing import Any, cast

from clusterjob.async_result import AsyncResult
from clusterjob.cli.common import (
    EXIT_COMPLETED,
    CliError,
    outcome,
    print_jobs,
    result_object,
    wait_with_progress,
)
from clusterjob.config import convert_resource_value
from clusterjob.jobscript import JobScript
from clusterjob.status import str_status

__all__ = ["add_parsers", "build_job"]

SUBMIT_EXAMPLE = """\
exit status: 0 submitted (with --wait: completed), 1 the job failed or was cancelled
(a resumed job exits like the job), 2 usage or configuration error.

example:
  $ clusterjob submit --backend local --cache-folder c --cache-id hello --wait hello.sh
  submitted job 1 (hello) to local; cache file c/clusterjob.hello.cache
  cache_id  job_id  backend  host  status     exit  name
  --------  ------  -------  ----  ---------  ----  -----
  hello     1       local    -     COMPLETED  0     hello
  $ clusterjob submit --backend local --cache-folder c --cache-id hello hello.sh
  resumed job 1 (hello) from the cache, not submitted again: COMPLETED, exit code 0
"""

RENDER_EXAMPLE = """\
The options are those of submit, so that a submit command line shows its script when
'submit' is replaced by 'render'; --cache-folder, --cache-id, --force and --wait do
not change the script.

example:
  $ clusterjob render --backend slurm -r time=1:00:00 -r nodes=2 hello.sh
  #!/bin/bash
  #SBATCH --job-name=hello
  #SBATCH --nodes=2
  #SBATCH --time=1:00:00
  echo "hello from $SLURM_JOB_ID"
"""


def resource_pair(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``-r`` as a pair; an argparse usage error otherwise."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (for example -r time=1:00:00)")
    return key, value


def _job_class() -> type[JobScript]:
    """A fresh subclass, so that the INI files and --cache-folder change no one else's JobScript."""

    def body(namespace: dict[str, Any]) -> None:
        namespace["resources"] = OrderedDict(JobScript.resources)

    return cast("type[JobScript]", types.new_class("JobScript", (JobScript,), exec_body=body))


def _read_script(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as in_fh:
            return in_fh.read()
    except OSError as exc:
        raise CliError(f"cannot read job script {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"job script {path} is not UTF-8 text; save it as UTF-8") from None


def build_job(args: argparse.Namespace) -> JobScript:
    """The job the command line describes (see the module docstring for the order of settings)."""
    job_class = _job_class()
    for filename in args.ini:
        job_class.read_defaults(filename)
    if args.cache_folder is not None:
        job_class.cache_folder = args.cache_folder
    resources = {
        key: convert_resource_value(key, value, f"-r {key}={value}")
        for key, value in args.resources
    }
    stem = os.path.splitext(os.path.basename(args.script))[0]
    jobname = str(resources.pop("jobname", None) or job_class.resources.get("jobname") or stem)
    attributes = {
        name: value
        for name, value in (("backend", args.backend), ("remote", args.remote))
        if value is not None
    }
    body = _read_script(args.script)
    try:
        job = job_class(body, jobname=jobname, **attributes)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    job.resources.update(resources)
    if not job.filename:
        base, extension = os.path.splitext(job.script_filename())
        job.filename = f"{base}.job{extension}"
    return job


def _describe(result: AsyncResult) -> str:
    where = f" on {result.remote}" if result.remote else ""
    if result.resumed:
        status = str_status[result._status]
        code = f", exit code {result.exit_code}" if result.exit_code is not None else ""
        return (
            f"resumed job {result.job_id} ({result.jobname}) from the cache, "
            f"not submitted again: {status}{code}"
        )
    cached = (
        f"cache file {result.cache_file}"
        if result.cache_file
        else "not cached (no --cache-folder), so status/wait/cancel cannot find it later"
    )
    backend = result.backend.name if result.backend is not None else "?"
    return f"submitted job {result.job_id} ({result.jobname}) to {backend}{where}; {cached}"


def cmd_submit(args: argparse.Namespace) -> int:
    job = build_job(args)
    if args.cache_id is not None and type(job).cache_folder is None:
        raise CliError(
            f"--cache-id {args.cache_id} needs a cache folder: add --cache-folder DIR "
            "(or cache_folder in an --ini file)"
        )
    result = job.submit(cache_id=args.cache_id, force=args.force)
    assert isinstance(result, AsyncResult)  # submit(block=False) returns the result
    if result.resumed:
        result.poll()
    if not args.json:
        print(_describe(result), flush=True)
    if args.wait:
        wait_with_progress([result], timeout=None)
    if args.json:
        print_jobs([{**result_object(result), "resumed": result.resumed}], as_json=True)
    elif args.wait:
        print_jobs([result_object(result)], as_json=False)
    if args.wait or result.resumed:
        return outcome([result], unfinished_ok=not args.wait)
    return EXIT_COMPLETED


def cmd_render(args: argparse.Namespace) -> int:
    job = build_job(args)
    script = str(job)
    if args.json:  # the script, and where submit would write it
        described = {
            "name": job.resources["jobname"],
            "backend": job.backend,
            "remote": job.remote,
            "filename": posixpath.normpath(posixpath.join(job.job_folder(), job.script_filename())),
            "script": script,
        }
        print(json.dumps(described, indent=2))
    else:
        sys.stdout.write(script if script.endswith("\n") else script + "\n")
    return EXIT_COMPLETED


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", metavar="B", help="the backend (default: slurm, or the INI's)")
    parser.add_argument("--remote", metavar="HOST", help="submit on HOST over ssh")
    parser.add_argument(
        "--cache-folder",
        metavar="DIR",
        help="cache the job in DIR: a rerun resumes it instead of submitting it again",
    )
    parser.add_argument(
        "--cache-id",
        metavar="ID",
        help="the job's id in the cache (default: derived from the rendered job)",
    )
    parser.add_argument(
        "--ini",
        metavar="FILE",
        action="append",
        default=[],
        help="INI file with [Attributes] and [Resources] (repeat for several; later ones win)",
    )
    parser.add_argument(
        "-r",
        "--resource",
        dest="resources",
        metavar="KEY=VALUE",
        type=resource_pair,
        action="append",
        default=[],
        help="set a resource (repeat: -r time=1:00:00 -r nodes=2); -r jobname=NAME names the job",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="discard the cached job (an unreadable cache file is set aside) and submit",
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until the job finished; exit like the job"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the job as JSON (render: name, backend, remote, filename, script)",
    )
    parser.add_argument("script", metavar="SCRIPT", help="the job script (its body)")


def add_parsers(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    submit = commands.add_parser(
        "submit",
        help="submit a job script (resumed from the cache if it was submitted already)",
        description="Submit SCRIPT as a job. With a cache folder, a job already submitted "
        "under the same cache id is resumed from the cache, not submitted again (unless it "
        "failed or was cancelled: then it is submitted again).",
        epilog=SUBMIT_EXAMPLE,
        formatter_class=formatter,
    )
    _add_job_arguments(submit)
    submit.set_defaults(func=cmd_submit)
    render = commands.add_parser(
        "render",
        help="print the rendered job script; submit nothing",
        description="Print SCRIPT as it would be submitted: shebang, the backend's resource "
        "headers, scheduler variables and {placeholders} filled in. Nothing is written "
        "or submitted.",
        epilog=RENDER_EXAMPLE,
        formatter_class=formatter,
    )
    _add_job_arguments(render)
    render.set_defaults(func=cmd_render)
