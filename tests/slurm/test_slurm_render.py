"""SLURM job scripts: the documented example, the parallelization table, the option rule."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from clusterjob import JobScript
from clusterjob.backends import ResourcesNotSupportedError, SubmissionContext
from clusterjob_slurm import SlurmBackend
from helpers import rendering
from helpers.documented import PRINTENV_RESOURCES
from helpers.results import job_result

TAG = SubmissionContext(tag="cj-0123456789-abcdef")

BODY = r"""
echo "####################################################"
echo "Job id: $CLUSTERJOB_ID"
echo "Job name: $CLUSTERJOB_WORKDIR"
echo "Job started on" `hostname` `date`
echo "Current directory:" `pwd`
echo "####################################################"

echo "####################################################"
echo "Full Environment:"
printenv
echo "####################################################"

sleep 90

echo "Job Finished: " `date`
exit 0
"""

RENDERED = r"""#!/bin/bash
#SBATCH --job-name=printenv
#SBATCH --mem=100
#SBATCH --nodes=1
#SBATCH --partition=test
#SBATCH --error=printenv.err
#SBATCH --output=printenv.out
#SBATCH --cpus-per-task=1
#SBATCH --time=00:05:00

echo "####################################################"
echo "Job id: $SLURM_JOB_ID"
echo "Job name: $SLURM_SUBMIT_DIR"
echo "Job started on" `hostname` `date`
echo "Current directory:" `pwd`
echo "####################################################"

echo "####################################################"
echo "Full Environment:"
printenv
echo "####################################################"

sleep 90

echo "Job Finished: " `date`
exit 0
"""


def headers(**resources: object) -> list[str]:
    return [
        line
        for line in str(JobScript("true", backend="slurm", **resources)).splitlines()
        if line.startswith("#SBATCH")
    ]


def test_documented_printenv_example_renders_exactly() -> None:
    jobscript = JobScript(BODY, backend="slurm", **PRINTENV_RESOURCES)
    assert str(jobscript) == RENDERED


def test_documented_myvar_example() -> None:
    jobscript = JobScript("\necho {myvar}\n", jobname="myvar_test")  # slurm is the default backend
    jobscript.myvar = "Hello"
    assert str(jobscript) == "#!/bin/bash\n#SBATCH --job-name=myvar_test\n\necho Hello\n"


def test_backend_attributes_match_the_documentation() -> None:
    backend = SlurmBackend()
    assert (backend.name, backend.extension, backend.prefix) == ("slurm", "slr", "#SBATCH")
    assert backend.job_vars == {
        "CLUSTERJOB_ID": "SLURM_JOB_ID",
        "CLUSTERJOB_WORKDIR": "SLURM_SUBMIT_DIR",
        "CLUSTERJOB_SUBMIT_HOST": "SLURM_SUBMIT_HOST",
        "CLUSTERJOB_NAME": "SLURM_JOB_NAME",
        "CLUSTERJOB_NODELIST": "SLURM_JOB_NODELIST",
    }
    assert JobScript("true", jobname="x").script_filename() == "x.slr"


def test_all_core_variables_are_replaced_in_both_spellings() -> None:
    body = "echo $CLUSTERJOB_ID ${CLUSTERJOB_NAME} $CLUSTERJOB_SUBMIT_HOST $CLUSTERJOB_NODELIST $CLUSTERJOB_WORKDIR $CLUSTERJOB_IDX"
    assert SlurmBackend().replace_body_vars(body) == (
        "echo $SLURM_JOB_ID ${SLURM_JOB_NAME} $SLURM_SUBMIT_HOST $SLURM_JOB_NODELIST $SLURM_SUBMIT_DIR $CLUSTERJOB_IDX"
    )


@pytest.mark.parametrize(
    ("nodes", "ppn", "threads", "expected"),
    [
        # Multi-process (MPI): the spec's "--nodes=2 --tasks-per-node=32 --cpus-per-task=1"
        (2, 32, 1, ["--nodes=2", "--tasks-per-node=32", "--cpus-per-task=1"]),
        # OpenMP: the spec writes "-n1 -c32"; the mapping gives the same request spelled per node
        (1, 1, 32, ["--nodes=1", "--tasks-per-node=1", "--cpus-per-task=32"]),
        # Hybrid: the spec's "--nodes=4 --tasks-per-node=2 --cpus-per-task=16" (or -n8 -c16)
        (4, 2, 16, ["--nodes=4", "--tasks-per-node=2", "--cpus-per-task=16"]),
    ],
)
def test_parallelization_table(nodes: int, ppn: int, threads: int, expected: list[str]) -> None:
    lines = headers(jobname="par", nodes=nodes, ppn=ppn, threads=threads)
    # sorted by resource key: jobname, nodes, ppn, threads
    assert lines == ["#SBATCH --job-name=par", *(f"#SBATCH {option}" for option in expected)]


def test_common_keys() -> None:
    assert headers(
        jobname="j", queue="debug", time="1:00:00", mem="4G", stdout="o", stderr="e"
    ) == [
        "#SBATCH --job-name=j",
        "#SBATCH --mem=4G",
        "#SBATCH --partition=debug",
        "#SBATCH --error=e",
        "#SBATCH --output=o",
        "#SBATCH --time=1:00:00",
    ]


def test_documented_rule_for_other_keys() -> None:
    assert headers(jobname="j", contiguous=True, dependency="after:12454", F="nodefile.txt") == [
        "#SBATCH -F nodefile.txt",
        "#SBATCH --contiguous",
        "#SBATCH --dependency=after:12454",
        "#SBATCH --job-name=j",
    ]


def test_false_and_none_leave_the_option_out() -> None:
    assert headers(jobname="j", exclusive=False, requeue=None) == ["#SBATCH --job-name=j"]


def test_arrays_and_dependencies_by_keyword() -> None:
    assert headers(jobname="j", array="1-10%2", dependency="afterok:123") == [
        "#SBATCH --array=1-10%2",
        "#SBATCH --dependency=afterok:123",
        "#SBATCH --job-name=j",
    ]


def test_underscores_in_keys_are_sbatch_dashes() -> None:
    assert headers(jobname="j", mail_type="END,FAIL", cpus_per_gpu=4) == [
        "#SBATCH --cpus-per-gpu=4",
        "#SBATCH --job-name=j",
        "#SBATCH --mail-type=END,FAIL",
    ]


def test_values_with_spaces_quotes_or_backslashes_are_quoted_as_sbatch_reads_them() -> None:
    assert headers(jobname="my job", comment="it's here") == [
        '#SBATCH --comment="it\'s here"',
        '#SBATCH --job-name="my job"',
    ]
    assert headers(jobname="j", comment='say "hi"') == [
        '#SBATCH --comment="say \\"hi\\""',
        "#SBATCH --job-name=j",
    ]
    assert headers(jobname="a\\b", comment="a 'b' \"c\"") == [
        '#SBATCH --comment="a \'b\' \\"c\\""',
        '#SBATCH --job-name="a\\\\b"',
    ]


def test_values_sbatch_cannot_read_are_refused_with_the_key() -> None:
    with pytest.raises(ResourcesNotSupportedError, match="resource comment=.*line break"):
        headers(jobname="j", comment="two\nlines")


@pytest.mark.parametrize(
    ("given", "written"),
    [("90", "90"), (90, "90"), ("10:00", "10:00"), ("1:00:00", "1:00:00"), ("2-12", "2-12"),
     ("2-12:30", "2-12:30"), ("1-1:10:30", "1-1:10:30"), ("1:01:10:30", "1-01:10:30")],
)  # fmt: skip
def test_walltime_formats(given: object, written: str) -> None:
    assert headers(jobname="j", time=given)[-1] == f"#SBATCH --time={written}"


def test_invalid_walltime_names_the_resource() -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(jobname="j", time="1 hour")
    assert str(err.value) == (
        "backend 'slurm' cannot express resource time='1 hour': a walltime is minutes, minutes:seconds, "
        "hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds or "
        "days:hours:minutes:seconds"
    )


def test_tag_goes_into_the_comment_and_keeps_the_users_comment() -> None:
    backend = SlurmBackend()
    tagged = JobScript("true", jobname="j", backend="slurm")
    assert backend.resource_headers(tagged, TAG) == [
        "#SBATCH --comment=cj-0123456789-abcdef",
        "#SBATCH --job-name=j",
    ]
    tagged.resources["comment"] = "project-x"
    assert backend.resource_headers(tagged, TAG) == [
        '#SBATCH --comment="project-x cj-0123456789-abcdef"',
        "#SBATCH --job-name=j",
    ]
    tagged.resources["comment"] = 1  # regression: a comment equal to True was dropped for the tag
    assert backend.resource_headers(tagged, TAG)[0] == '#SBATCH --comment="1 cj-0123456789-abcdef"'


def test_the_tag_is_no_resource_and_a_script_rendered_outside_a_submission_has_none() -> None:
    job = JobScript("true", jobname="j", backend="slurm", comment="project-x")
    assert "clusterjob_tag" not in job.resources
    assert headers(jobname="j", comment="project-x") == [
        "#SBATCH --comment=project-x",
        "#SBATCH --job-name=j",
    ]
    assert (
        SlurmBackend().resource_headers(job, TAG)[0]
        == '#SBATCH --comment="project-x cj-0123456789-abcdef"'
    )
    assert job.resources == {"jobname": "j", "comment": "project-x"}


def test_dependencies_of_after_are_one_afterok_list() -> None:
    job = JobScript("true", jobname="j", backend="slurm")
    assert SlurmBackend().resource_headers(job, SubmissionContext(after=("1", "2")))[0] == (
        "#SBATCH --dependency=afterok:1:2"
    )
    assert (
        SlurmBackend().resource_headers(job, SubmissionContext(after=("7",)))[0]
        == "#SBATCH --dependency=afterok:7"
    )


def test_dependencies_of_after_join_the_users_dependency_list() -> None:
    """sbatch(1), --dependency: a ','-joined list must hold in full; '?' joins alternatives, never both."""
    after = SubmissionContext(after=("7",))
    job = JobScript("true", jobname="j", backend="slurm", dependency="afterany:3")
    assert (
        SlurmBackend().resource_headers(job, after)[0]
        == "#SBATCH --dependency=afterany:3,afterok:7"
    )
    job = JobScript("true", jobname="j", backend="slurm", d="singleton")
    assert SlurmBackend().resource_headers(job, after)[0] == "#SBATCH -d singleton,afterok:7"
    job = JobScript("true", jobname="j", backend="slurm", dependency="afterok:3?afterok:4")
    with pytest.raises(ResourcesNotSupportedError) as err:
        SlurmBackend().resource_headers(job, after)
    assert str(err.value) == (
        "backend 'slurm' cannot express submit(after=...) together with resource dependency='afterok:3?afterok:4': "
        "sbatch joins a dependency list with ',' (all) or '?' (any one), never both; write the whole condition "
        "in that resource instead of using after="
    )


def test_submit_and_cancel_commands() -> None:
    backend = SlurmBackend()
    jobscript = JobScript("true", jobname="j", backend="slurm")
    assert backend.cmd_submit(jobscript) == ["sbatch", "j.slr"]
    jobscript.filename = "-odd.slr"
    assert backend.cmd_submit(jobscript) == ["sbatch", "./-odd.slr"]
    assert backend.cmd_cancel(job_result(backend, "42")) == ["scancel", "42"]


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        ("Submitted batch job 1234\n", "1234"),
        ("sbatch: site message\nSubmitted batch job 77 on cluster c2\n", "77"),
        ("1234\n", "1234"),
        ("1234;cluster2\n", "1234"),
        ("", None),
        ("sbatch: error: Batch job submission failed: Invalid partition name specified\n", None),
    ],
)
def test_get_job_id(response: str, job_id: str | None) -> None:
    assert SlurmBackend().get_job_id(response) == job_id


# -- INI files written for the original clusterjob: keys with their dashes ---------------

#: The ``#SBATCH`` lines of a job named ``j`` whose [Resources] section is given, read by
#: read_settings.
ini_headers = functools.partial(rendering.ini_headers, "slurm", jobname="j")


def test_dashed_keys_from_an_ini_file_are_those_sbatch_options(tmp_path: Path) -> None:
    assert ini_headers(tmp_path, """\
        -A = myaccount
        --qos = high
        --mail-type = END,FAIL
        --exclusive = true
        --requeue = false
        -t = 90
        --comment = it's here
        """) == [
        "#SBATCH -A myaccount",
        '#SBATCH --comment="it\'s here"',
        "#SBATCH --exclusive",
        "#SBATCH --job-name=j",
        "#SBATCH --mail-type=END,FAIL",
        "#SBATCH --qos=high",
        "#SBATCH -t 90",
    ]  # fmt: skip


def test_a_dashed_key_is_written_as_given_without_reading_underscores_as_dashes(
    tmp_path: Path,
) -> None:
    assert ini_headers(tmp_path, "--mail_type = END\n")[0] == "#SBATCH --mail_type=END"


def test_a_dashed_comment_keeps_the_submission_tag(tmp_path: Path) -> None:
    assert ini_headers(tmp_path, "--comment = project-x\n", TAG) == [
        '#SBATCH --comment="project-x cj-0123456789-abcdef"',
        "#SBATCH --job-name=j",
    ]


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("-J = other", ("resource '-J'='other': resource jobname='j' already sets --job-name; "
                        "jobname is clusterjob's own key for it: set jobname instead of -J")),
        ("--job-name = other", "resource '--job-name'='other': resource jobname='j' already sets --job-name"),
        ("time = 10\n--time = 20", "resource '--time'='20': resource time='10' already sets --time"),
        ("time = 10\n-t = 20", "resource '-t'='20': resource time='10' already sets --time"),
        ("queue = debug\n-p = long", "resource '-p'='long': resource queue='debug' already sets --partition"),
        ("ppn = 2\n--ntasks-per-node = 4", ("resource '--ntasks-per-node'='4': resource ppn=2 already sets "
                                            "--ntasks-per-node")),
        ("-A = a1\n--account = a2", ("resource '-A'='a1': resource '--account'='a2' already sets --account; "
                                     "keep one of the two")),
        ("qos = low\n--qos = high", "resource '--qos'='high': resource qos='low' already sets --qos"),
        ("mail_type = END\n--mail-type = FAIL", ("resource '--mail-type'='FAIL': resource mail_type='END' already "
                                                 "sets --mail-type")),
        # two undashed keys (regression: two --partition lines, of which sbatch took the last)
        ("queue = debug\npartition = long", ("resource 'partition'='long': resource queue='debug' already sets "
                                             "--partition; queue is clusterjob's own key for it: set queue "
                                             "instead of partition")),
        ("nodes = 2\nN = 3", "resource 'N'='3': resource nodes=2 already sets --nodes; nodes is"),
        ("p = a\npartition = b", ("resource 'p'='a': resource partition='b' already sets --partition; "
                                  "keep one of the two")),
    ],
)  # fmt: skip
def test_a_key_that_repeats_another_resource_is_refused_naming_both(
    tmp_path: Path, resources: str, message: str
) -> None:
    with rendering.refused("slurm", message):
        ini_headers(tmp_path, resources + "\n")


def test_a_dashed_dependency_takes_the_jobs_of_after(tmp_path: Path) -> None:
    """Changed on purpose: after= used to be a second dependency resource, refused next to ``-d``."""
    assert ini_headers(tmp_path, "-d = singleton\n", SubmissionContext(after=("7",)))[0] == (
        "#SBATCH -d singleton,afterok:7"
    )
    assert ini_headers(tmp_path, "--dependency = afterany:3\n", SubmissionContext(after=("7",)))[
        0
    ] == ("#SBATCH --dependency=afterany:3,afterok:7")


@pytest.mark.parametrize("key", ["-", "---qos", "-A B", "--qos=high", "--qos high"])
def test_a_malformed_dashed_key_is_refused_naming_it(key: str) -> None:
    with rendering.refused("slurm", f"resource {key!r}="):
        headers(jobname="j", **{key: "x"})


# -- a site backend that subclasses SlurmBackend -------------------------------------------


class SiteSlurm(SlurmBackend):
    """What a site plugin writes: the 'batch' partition by default, an account required, gpus as gres."""

    name = "site"

    def prepare_resources(
        self, resources: dict[str, Any], context: SubmissionContext
    ) -> dict[str, Any]:
        resources = self.with_defaults(resources, {"queue": "batch"})
        if not resources.get("account"):
            raise ResourcesNotSupportedError(
                f"backend {self.name!r} needs resource account (account='myproject')"
            )
        gpus = resources.pop("gpus", None)
        if gpus:
            resources["gres"] = f"gpu:{gpus}"
        return super().prepare_resources(resources, context)


def test_a_site_subclass_adds_defaults_and_its_keys_while_slurm_renders_the_rest() -> None:
    """The issue's plugin: no ``--clusterjob-tag``, comment quoted, walltime converted, False left out."""
    JobScript.register_backend(SiteSlurm())
    job = JobScript("true", jobname="j", backend="site", account="physics", gpus=2, comment="my project",
                    time="1:00:00:00", exclusive=False)  # fmt: skip
    assert SiteSlurm().resource_headers(job, TAG) == [
        "#SBATCH --account=physics",
        '#SBATCH --comment="my project cj-0123456789-abcdef"',
        "#SBATCH --gres=gpu:2",
        "#SBATCH --job-name=j",
        "#SBATCH --partition=batch",
        "#SBATCH --time=1-00:00:00",
    ]
    assert str(job).splitlines()[1:3] == [
        "#SBATCH --account=physics",
        '#SBATCH --comment="my project"',
    ]
    assert job.resources == {"jobname": "j", "account": "physics", "gpus": 2, "comment": "my project",
                             "time": "1:00:00:00", "exclusive": False}  # fmt: skip


@pytest.mark.parametrize(("key", "written"), [("queue", "--partition=debug"), ("partition", "--partition=debug"),
                                              ("-p", "-p debug"), ("--partition", "--partition=debug")])  # fmt: skip
def test_a_site_default_yields_to_the_jobs_own_value_under_any_spelling(
    key: str, written: str
) -> None:
    job = JobScript("true", jobname="j", backend="slurm", account="physics", **{key: "debug"})
    lines = SiteSlurm().resource_headers(job)
    assert f"#SBATCH {written}" in lines and "#SBATCH --partition=batch" not in lines


def test_a_site_backend_names_the_resource_it_requires() -> None:
    with pytest.raises(ResourcesNotSupportedError, match=r"^backend 'site' needs resource account"):
        SiteSlurm().resource_headers(JobScript("true", jobname="j", backend="slurm"))


def test_a_site_subclass_keeps_dependencies_and_the_dashed_key_checks() -> None:
    job = JobScript("true", jobname="j", backend="slurm", account="physics")
    assert "#SBATCH --dependency=afterok:7" in SiteSlurm().resource_headers(
        job, SubmissionContext(after=("7",))
    )
    job.resources["--account"] = "chemistry"
    with pytest.raises(
        ResourcesNotSupportedError, match=r"resource '--account'='chemistry': resource account="
    ):
        SiteSlurm().resource_headers(job)
