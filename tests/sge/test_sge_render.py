"""Rendering of ``#$`` headers: the parallelization table, common keys, the generic rule, errors."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from clusterjob import JobScript
from clusterjob.backends import ResourcesNotSupportedError, SubmissionContext
from clusterjob_sge import SgeBackend
from helpers import rendering

#: The ``#$`` lines of a job named ``job`` with the given resources.
headers = functools.partial(rendering.headers, "sge")
#: The ``#$`` lines of a job whose [Resources] section is given, read by read_settings.
ini_headers = functools.partial(rendering.ini_headers, "sge")


def pe_lines(**resources: Any) -> list[str]:
    return [line for line in headers(**resources) if line.startswith("#$ -pe")]


# -- the spec's parallelization paradigms (32-core nodes) ------------------------


def test_multi_process_two_full_nodes_needs_a_fixed_allocation_pe() -> None:
    """nodes=2, ppn=32, threads=1: 64 slots, 32 per host."""
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(nodes=2, ppn=32, threads=1)
    message = str(err.value)
    assert message.startswith("backend 'sge' cannot express resource nodes=2:")
    assert "no parallel environment was named (resource 'pe')" in message
    assert (
        "set pe='<a PE with allocation_rule 32>' (ppn*threads) to get nodes=2 x 32 slots" in message
    )
    assert pe_lines(nodes=2, ppn=32, threads=1, pe="mpi32") == ["#$ -pe mpi32 64"]


def test_openmp_one_process_with_32_threads_uses_the_pe_slots_environment() -> None:
    """nodes=1, ppn=1, threads=32: 32 slots on one host."""
    assert pe_lines(nodes=1, ppn=1, threads=32) == ["#$ -pe smp 32"]


def test_hybrid_four_nodes_two_processes_of_16_threads() -> None:
    """nodes=4, ppn=2, threads=16: 128 slots, 32 per host."""
    with pytest.raises(ResourcesNotSupportedError, match=r"resource nodes=4: .*allocation_rule 32"):
        headers(nodes=4, ppn=2, threads=16)
    assert pe_lines(nodes=4, ppn=2, threads=16, pe="mpi32") == ["#$ -pe mpi32 128"]


def test_nodes_above_one_with_the_default_pe_slots_environment_is_refused() -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(nodes=2, ppn=4, pe="smp")
    assert "the parallel environment 'smp' keeps all slots on one host ($pe_slots)" in str(
        err.value
    )


def test_serial_job_has_no_parallel_environment() -> None:
    assert pe_lines() == []
    assert pe_lines(nodes=1, ppn=1, threads=1) == []


def test_processes_per_node_count_as_slots_on_one_host() -> None:
    assert pe_lines(ppn=4) == ["#$ -pe smp 4"]
    assert pe_lines(ppn=2, threads=3) == ["#$ -pe smp 6"]


def test_explicit_pe_is_used_even_for_one_slot() -> None:
    assert pe_lines(pe="omp") == ["#$ -pe omp 1"]
    assert pe_lines(pe="omp", threads=8) == ["#$ -pe omp 8"]


def test_site_without_default_pe_must_name_one() -> None:
    backend = SgeBackend()
    backend.default_pe = None
    with pytest.raises(ResourcesNotSupportedError) as err:
        rendering.headers(backend, threads=4)
    assert str(err.value) == (
        "backend 'sge' cannot express resource threads=4: 4 slots on one host need a parallel "
        "environment; set pe='<a PE with allocation_rule $pe_slots>' (qconf -spl)"
    )
    with pytest.raises(ResourcesNotSupportedError, match=r"resource ppn=2: 2 slots on one host"):
        rendering.headers(backend, ppn=2)
    assert rendering.headers(backend, threads=4, pe="shm")[3] == "#$ -pe shm 4"


def test_site_default_pe_can_be_changed() -> None:
    backend = SgeBackend()
    backend.default_pe = "openmp"
    assert "#$ -pe openmp 8" in rendering.headers(backend, threads=8)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nodes", "two"),
        ("nodes", 0),
        ("ppn", -1),
        ("threads", True),
        ("threads", "1.5"),
    ],
)
def test_counts_must_be_positive_integers(key: str, value: Any) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(**{key: value})
    assert (
        str(err.value)
        == f"backend 'sge' cannot express resource {key}={value!r}: {key} must be a positive integer"
    )


def test_mem_must_be_megabytes() -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(mem="2G")
    assert str(err.value) == (
        "backend 'sge' cannot express resource mem='2G': mem is the memory per node in MB, a positive integer"
    )


def test_counts_from_ini_files_may_be_strings() -> None:
    assert pe_lines(nodes="1", ppn="2", threads="2") == ["#$ -pe smp 4"]


@pytest.mark.parametrize("pe", ["", "mpi 32"])
def test_pe_must_be_one_name(pe: str) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(pe=pe, threads=2)
    assert str(err.value) == (
        f"backend 'sge' cannot express resource pe={pe!r}: expected the name of one parallel environment (qconf -spl)"
    )


# -- common keys -------------------------------------------------------------


def test_full_header_order_for_the_common_keys() -> None:
    assert headers(
        queue="all.q",
        time="00:05:00",
        nodes=1,
        ppn=2,
        threads=2,
        mem=1000,
        stdout="job.out",
        stderr="job.err",
    ) == [
        "#$ -N job",
        "#$ -S /bin/bash",
        "#$ -cwd",
        "#$ -q all.q",
        "#$ -l h_rt=00:05:00",
        "#$ -pe smp 4",
        "#$ -l h_vmem=250M",
        "#$ -o job.out",
        "#$ -e job.err",
    ]


def test_shell_is_always_passed_with_dash_s() -> None:
    jobscript = JobScript("true", backend="sge", jobname="job", shell="/bin/sh")
    assert "#$ -S /bin/sh" in SgeBackend().resource_headers(jobscript)


@pytest.mark.parametrize(
    ("value", "h_rt"),
    [
        ("10", "00:10:00"),
        ("10:30", "00:10:30"),
        ("1:10:30", "01:10:30"),
        ("1-0", "24:00:00"),
        ("1-1:10", "25:10:00"),
        ("1-1:10:30", "25:10:30"),
        ("2:1:10:30", "49:10:30"),
        (90, "01:30:00"),
    ],
)
def test_time_is_normalized_to_h_rt_hours_minutes_seconds(value: Any, h_rt: str) -> None:
    assert f"#$ -l h_rt={h_rt}" in headers(time=value)


def test_invalid_time_names_the_key_and_the_formats() -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(time="1 1:10:30")
    assert str(err.value) == (
        "backend 'sge' cannot express resource time='1 1:10:30': a walltime is minutes, minutes:seconds, "
        "hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds or "
        "days:hours:minutes:seconds"
    )


@pytest.mark.parametrize(
    ("resources", "h_vmem"),
    [
        ({"mem": 100}, "100M"),  # one slot: per node == per slot
        ({"mem": "1000", "threads": 4}, "250M"),
        ({"mem": 1000, "ppn": 1, "threads": 3}, "334M"),  # rounded up: never less than asked
        ({"mem": 4000, "nodes": 2, "ppn": 2, "threads": 2, "pe": "mpi4"}, "1000M"),
    ],
)
def test_mem_per_node_becomes_h_vmem_per_slot(resources: dict[str, Any], h_vmem: str) -> None:
    assert f"#$ -l h_vmem={h_vmem}" in headers(**resources)


def test_memory_complex_can_be_changed_by_a_site() -> None:
    backend = SgeBackend()
    backend.resource_replacements = {
        **backend.resource_replacements,
        "mem": "h_rss",
        "time": "s_rt",
    }
    lines = rendering.headers(backend, mem=512, time="5")
    assert "#$ -l h_rss=512M" in lines
    assert "#$ -l s_rt=00:05:00" in lines


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("1abc", "Grid Engine job names may not start with a digit"),
        ("a b", "Grid Engine job names may not contain ' '"),
        ("a/b:c", "Grid Engine job names may not contain '/:'"),
        ("a@b", "Grid Engine job names may not contain '@'"),
    ],
)
def test_job_names_grid_engine_refuses(name: str, why: str) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        SgeBackend().resource_headers(JobScript("true", backend="sge", jobname=name))
    assert str(err.value) == f"backend 'sge' cannot express resource jobname={name!r}: {why}"


def test_name_key_must_agree_with_jobname() -> None:
    assert headers(name="job")[0] == "#$ -N job"
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(name="other")
    assert str(err.value) == (
        "backend 'sge' cannot express resource name='other': it differs from jobname='job'; "
        "set the job name through jobname"
    )


def test_working_directory_is_the_submit_folder_unless_the_job_says_otherwise() -> None:
    assert "#$ -cwd" in headers()
    lines = headers(wd="/scratch/run1")
    assert "#$ -cwd" not in lines and "#$ -wd /scratch/run1" in lines
    assert not any("cwd" in line for line in headers(cwd=False))


# -- the generic rule ------------------------------------------------------------


def test_other_keys_follow_the_rule_with_one_dash_sorted_by_key() -> None:
    lines = headers(hold_jid="1", V=True, notify=False, l="scratch=10G", M="me@example.org", m="ea")
    assert lines[3:] == [
        "#$ -M me@example.org",
        "#$ -V",
        "#$ -hold_jid 1",
        "#$ -l scratch=10G",
        "#$ -m ea",
    ]


def test_values_with_blanks_are_quoted() -> None:
    assert '#$ -ac "NOTE=two words"' in headers(ac="NOTE=two words")


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("ac", "A=1\necho injected", "a line break cannot stand in a '#$' header line"),
        (
            "ac",
            'NOTE="two words"',
            "a value with blanks and double quotes cannot be quoted in a '#$' header line",
        ),
        ("stdout", "out\r", "a line break cannot stand in a '#$' header line"),
    ],
)
def test_values_that_cannot_be_written_are_refused(key: str, value: str, why: str) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(**{key: value})
    assert str(err.value) == f"backend 'sge' cannot express resource {key}={value!r}: {why}"


def test_option_names_must_be_plain_words() -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(**{"hold-jid": "1"})
    assert str(err.value) == (
        "backend 'sge' cannot express resource hold-jid='1': a qsub option name consists of letters, digits and '_'"
    )


# -- dependencies and tags ----------------------------------------------------------


def test_dependencies_become_hold_jid_merged_with_the_users_own() -> None:
    after = SubmissionContext(after=("12", "13.1-3:1"))
    assert "#$ -hold_jid 12,13" in headers(context=after)
    lines = headers(context=after, hold_jid="11,12")
    assert "#$ -hold_jid 11,12,13" in lines
    assert sum(line.startswith("#$ -hold_jid") for line in lines) == 1


def test_dependency_on_something_that_is_no_job_number() -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        headers(context=SubmissionContext(after=("12", "myjob")))
    assert str(err.value) == (
        "backend 'sge' cannot express resource after=['12', 'myjob']: 'myjob' is not a Grid Engine job number"
    )


def test_tag_is_account_string_and_job_context() -> None:
    tag = "cj-0123456789-abcdef"
    lines = headers(context=SubmissionContext(tag=tag))
    assert lines[-2:] == [f"#$ -A {tag}", f"#$ -ac CLUSTERJOB_TAG={tag}"]


def test_tag_keeps_the_users_account_string_and_context() -> None:
    tag = "cj-0123456789-abcdef"
    lines = headers(context=SubmissionContext(tag=tag), A="project42", ac="STEP=1")
    assert "#$ -A project42" in lines and f"#$ -A {tag}" not in lines
    assert f"#$ -ac CLUSTERJOB_TAG={tag}" in lines and "#$ -ac STEP=1" in lines


# -- body variables and the whole script --------------------------------------------


def test_core_variables_map_to_grid_engine_variables() -> None:
    body = "$CLUSTERJOB_ID ${CLUSTERJOB_WORKDIR} $CLUSTERJOB_SUBMIT_HOST $CLUSTERJOB_NAME $CLUSTERJOB_NODELIST $CLUSTERJOB_IDX"
    assert (
        SgeBackend().replace_body_vars(body)
        == "$JOB_ID ${SGE_O_WORKDIR} $SGE_O_HOST $JOB_NAME $HOSTNAME $CLUSTERJOB_IDX"
    )


def test_rendered_script_as_in_the_readme() -> None:
    body = 'echo "Job $CLUSTERJOB_ID ({jobname}) on $CLUSTERJOB_NODELIST"\nexport OMP_NUM_THREADS={threads}\n./simulate'
    job = JobScript(
        body,
        backend="sge",
        jobname="simulate",
        queue="all.q",
        time="2:00:00",
        nodes=1,
        ppn=1,
        threads=4,
        mem=2000,
        stdout="simulate.out",
        stderr="simulate.err",
    )
    assert str(job) == (
        "#!/bin/bash\n"
        "#$ -N simulate\n"
        "#$ -S /bin/bash\n"
        "#$ -cwd\n"
        "#$ -q all.q\n"
        "#$ -l h_rt=02:00:00\n"
        "#$ -pe smp 4\n"
        "#$ -l h_vmem=500M\n"
        "#$ -o simulate.out\n"
        "#$ -e simulate.err\n"
        'echo "Job $JOB_ID (simulate) on $HOSTNAME"\n'
        "export OMP_NUM_THREADS=4\n"
        "./simulate"
    )


def test_backend_is_found_by_entry_point_and_at_the_documented_path() -> None:
    from clusterjob.backends.sge import SgeBackend as Documented

    assert "sge" in JobScript.backends
    assert Documented is SgeBackend
    backend = SgeBackend()
    assert (backend.name, backend.extension, backend.prefix) == ("sge", "sge", "#$")
    assert JobScript("true", backend="sge", jobname="x").script_filename() == "x.sge"


# -- INI files written for the original clusterjob: keys with their dashes ---------------


def test_dashed_keys_from_an_ini_file_are_those_qsub_options(tmp_path: Path) -> None:
    """The original's own SGE defaults were ``-V``, ``-j y`` and ``-cwd``; its docs advise ``-S /bin/bash``."""
    assert ini_headers(tmp_path, """\
        -j = y
        -S = /bin/bash
        -V = true
        -cwd = true
        -notify = false
        -l = scratch=10G
        -ac = NOTE=two words
        -M = me@example.org
        """) == [
        "#$ -N job",
        "#$ -S /bin/bash",
        "#$ -M me@example.org",
        "#$ -V",
        '#$ -ac "NOTE=two words"',
        "#$ -cwd",
        "#$ -j y",
        "#$ -l scratch=10G",
    ]  # fmt: skip


def test_dashed_pe_is_the_environment_and_the_slots(tmp_path: Path) -> None:
    """qsub(1): ``-pe parallel_environment n[-[m]]``, two words; a serial layout adds no second -pe."""
    lines = ini_headers(tmp_path, "-pe = mpi 8-16\nnodes = 1\nthreads = 1\n")
    assert [line for line in lines if "-pe" in line] == ["#$ -pe mpi 8-16"]


def test_dashed_wd_replaces_the_submit_folder(tmp_path: Path) -> None:
    lines = ini_headers(tmp_path, "-wd = /scratch/run1\n")
    assert "#$ -cwd" not in lines and "#$ -wd /scratch/run1" in lines


def test_dashed_hold_jid_and_account_merge_with_dependencies_and_the_tag(tmp_path: Path) -> None:
    context = SubmissionContext(tag="cj-0123456789-abcdef", after=("12",))
    lines = ini_headers(tmp_path, "-hold_jid = 11\n-A = project42\n", context)
    assert [line for line in lines if line.startswith(("#$ -hold_jid", "#$ -A"))] == [
        "#$ -hold_jid 11,12",
        "#$ -A project42",
    ]


def test_an_S_that_names_the_jobs_shell_is_written_once(tmp_path: Path) -> None:
    """Regression: ``S``/``-S`` used to add a second ``-S`` line after the one from ``shell``."""
    for resources in ("-S = /bin/bash\n", "S = /bin/bash\n"):
        assert sum(line.startswith("#$ -S") for line in ini_headers(tmp_path, resources)) == 1


def test_an_S_that_differs_from_the_jobs_shell_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        ini_headers(tmp_path, "-S = /bin/sh\n")
    assert str(err.value) == (
        "backend 'sge' cannot express resource S='/bin/sh': the job's shell is '/bin/bash' (its #! line and "
        "qsub -S); set the attribute shell = /bin/sh ([Attributes] of the INI file) instead of the -S option"
    )
    assert "#$ -S /bin/sh" in ini_headers(tmp_path, "-S = /bin/sh\n", shell="/bin/sh")


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("-N = other", ("resource '-N'='other': resource jobname='job' already sets -N; "
                        "jobname is clusterjob's own key for it: set jobname instead of -N")),
        ("queue = all.q\n-q = long.q", "resource '-q'='long.q': resource queue='all.q' already sets -q"),
        ("stderr = e.txt\n-e = err.txt", "resource '-e'='err.txt': resource stderr='e.txt' already sets -e"),
        ("time = 10\n-l = h_rt=1:00:00", "resource '-l'='h_rt=1:00:00': resource time='10' already sets -l h_rt"),
        ("mem = 100\n-l = h_vmem=1G,scratch=1G", ("resource '-l'='h_vmem=1G,scratch=1G': resource mem=100 already "
                                                  "sets -l h_vmem")),
        ("threads = 4\n-pe = smp 4", "resource '-pe'='smp 4': resource threads=4 already sets -pe"),
        ("hold_jid = 1\n-hold_jid = 2", ("resource '-hold_jid'='2': resource hold_jid='1' already sets -hold_jid; "
                                         "keep one of the two")),
        # two undashed keys (regression: two -q lines, of which qsub took one)
        ("queue = all.q\nq = long.q", "resource 'q'='long.q': resource queue='all.q' already sets -q; queue is"),
    ],
)  # fmt: skip
def test_a_key_that_repeats_another_resource_is_refused_naming_both(
    tmp_path: Path, resources: str, message: str
) -> None:
    with rendering.refused("sge", message):
        ini_headers(tmp_path, resources + "\n")


@pytest.mark.parametrize("key", ["-", "---x", "-j y", "-hold-jid", "- j"])
def test_a_malformed_dashed_key_is_refused_naming_it(tmp_path: Path, key: str) -> None:
    with rendering.refused("sge", f"resource {key!r}="):
        ini_headers(tmp_path, f"{key} = true\n")
