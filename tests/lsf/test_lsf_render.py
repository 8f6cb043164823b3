"""Resource headers and rendered scripts of the lsf backend, and ``time_to_minutes``."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.backends import ResourcesNotSupportedError, SubmissionContext
from clusterjob_lsf import time_to_minutes
from helpers import rendering
from helpers.documented import PRINTENV_RESOURCES

TAG = SubmissionContext(tag="cj-1a2b3c4d5e-9f8e7d")

# The "Parallelization Paradigms" table of the documentation (the table writes
# both "-n64" and "-n 128"; the backend always writes "-n 64").
PARADIGMS = [
    ((2, 32, 1), 64),
    ((1, 1, 32), 32),
    ((4, 2, 16), 128),
]


#: The ``#BSUB`` lines of a job named ``job`` with the given resources.
headers = functools.partial(rendering.headers, "lsf")
#: The ``#BSUB`` lines of a job whose [Resources] section is given, read by read_settings.
ini_headers = functools.partial(rendering.ini_headers, "lsf")


@pytest.mark.parametrize(("layout", "slots"), PARADIGMS)
def test_parallelization_table_header_lines(layout: tuple[int, int, int], slots: int) -> None:
    nodes, ppn, threads = layout
    assert headers(nodes=nodes, ppn=ppn, threads=threads) == [
        "#BSUB -J job",
        f"#BSUB -n {slots}",
        '#BSUB -R "span[ptile=32]"',
    ]


@pytest.mark.parametrize(("layout", "slots"), PARADIGMS)
def test_parallelization_table_rendered_script(layout: tuple[int, int, int], slots: int) -> None:
    nodes, ppn, threads = layout
    job = JobScript(
        "export OMP_NUM_THREADS={threads}\nmpirun ./a.out",
        jobname="para",
        backend="lsf",
        nodes=nodes,
        ppn=ppn,
        threads=threads,
    )
    assert str(job) == (
        f'#!/bin/bash\n#BSUB -J para\n#BSUB -n {slots}\n#BSUB -R "span[ptile=32]"\n'
        f"export OMP_NUM_THREADS={threads}\nmpirun ./a.out"
    )


def test_common_resources() -> None:
    job = JobScript(
        "cd $CLUSTERJOB_WORKDIR\necho $CLUSTERJOB_ID ${CLUSTERJOB_NAME} $CLUSTERJOB_SUBMIT_HOST $CLUSTERJOB_NODELIST",
        backend="lsf",
        **PRINTENV_RESOURCES,
    )
    assert str(job) == "\n".join(  # noqa: FLY002 - a list reads like the script
        [
            "#!/bin/bash",
            "#BSUB -J printenv",
            "#BSUB -q test",
            "#BSUB -W 5",
            "#BSUB -n 1",
            '#BSUB -R "span[ptile=1] rusage[mem=100]"',
            "#BSUB -o printenv.out",
            "#BSUB -e printenv.err",
            "cd $LS_SUBCWD",
            "echo $LSB_JOBID ${LSB_JOBNAME} $LSB_SUB_HOST $LSB_HOSTS",
        ]
    )


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        ("10", 10),
        (10, 10),
        ("10:00", 10),
        ("10:30", 11),  # rounded up: never less walltime than requested
        ("0:01", 1),
        ("1:10:30", 71),
        ("1:10:00", 70),
        ("1-0", 1440),
        ("1-10", 2040),
        ("1-1:10", 1510),
        ("1-1:10:30", 1511),
        ("1:1:10:30", 1511),
        ("0", 0),
    ],
)
def test_time_to_minutes(value: object, minutes: int) -> None:
    assert time_to_minutes(value) == minutes  # type: ignore[arg-type]


def test_time_to_minutes_rejects_invalid_patterns() -> None:
    with pytest.raises(ValueError, match="'1 1:10:30' has invalid pattern"):
        time_to_minutes("1 1:10:30")


def test_time_becomes_W_in_minutes() -> None:
    assert headers(time="1-1:10:30")[1:] == ["#BSUB -W 1511"]


def test_mem_is_reserved_per_host_with_the_layout_and_a_user_R() -> None:
    assert headers(mem=2000)[1:] == ['#BSUB -R "rusage[mem=2000]"']
    assert headers(nodes=2, ppn=4, mem=2000, R="select[type==X86_64]")[1:] == [
        "#BSUB -n 8",
        '#BSUB -R "select[type==X86_64] span[ptile=4] rusage[mem=2000]"',
    ]


def test_arbitrary_keys_are_single_dash_bsub_options() -> None:
    assert headers(x=True, B=False, app="fluent", P="proj1", outdir="/scratch/out dir", G=None)[
        1:
    ] == [
        "#BSUB -P proj1",
        "#BSUB -app fluent",
        '#BSUB -outdir "/scratch/out dir"',
        "#BSUB -x",
    ]


def test_dependency_condition_is_anded_with_a_user_w() -> None:
    dep = SubmissionContext(after=("11", "12"))
    assert headers(dep)[1:] == ['#BSUB -w "done(11) && done(12)"']
    assert headers(dep, w="ended(7)")[1:] == ['#BSUB -w "(ended(7)) && done(11) && done(12)"']
    assert headers(w="ended(7)")[1:] == ['#BSUB -w "(ended(7))"']


def test_tag_is_the_job_description() -> None:
    assert headers(TAG)[1:] == ["#BSUB -Jd cj-1a2b3c4d5e-9f8e7d"]
    assert headers(TAG, Jd="nightly run")[1:] == ['#BSUB -Jd "nightly run cj-1a2b3c4d5e-9f8e7d"']
    assert headers(Jd="nightly run")[1:] == ['#BSUB -Jd "nightly run"']


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"nodes": 0}, "cannot express resource nodes=0: nodes must be a positive integer"),
        ({"ppn": "many"}, "cannot express resource ppn='many': ppn must be a positive integer"),
        ({"mem": "2GB"}, "cannot express resource mem='2GB': mem is the memory per node in MB"),
        (
            {"time": "1 1:10:30"},
            "cannot express resource time='1 1:10:30': a walltime is minutes, minutes:seconds",
        ),
        (
            {"nodes": 2, "R": "span[hosts=1]"},
            "cannot express nodes/ppn/threads together with a span section",
        ),
        (
            {"mem": 10, "R": "rusage[swp=5]"},
            "cannot express mem=10 together with an rusage section",
        ),
        (
            {"bad-key": 1},
            "cannot express resource bad-key=1: a bsub option name must start with a letter",
        ),
    ],
)
def test_inexpressible_requests_name_the_key(resources: dict[str, object], message: str) -> None:
    with pytest.raises(ResourcesNotSupportedError, match="backend 'lsf' " + re.escape(message)):
        headers(**resources)


# -- INI files written for the original clusterjob: keys with their dashes ---------------


def test_dashed_keys_from_an_ini_file_are_those_bsub_options(tmp_path: Path) -> None:
    """bsub options as IBM's bsub reference lists them (LSF 10.1): -P project, -x, -app, -outdir, -B."""
    assert ini_headers(tmp_path, """\
        -P = proj1
        -x = true
        -B = false
        -app = fluent
        -outdir = /scratch/out dir
        --long = x
        """) == [
        "#BSUB -J job",
        "#BSUB --long=x",
        "#BSUB -P proj1",
        "#BSUB -app fluent",
        '#BSUB -outdir "/scratch/out dir"',
        "#BSUB -x",
    ]  # fmt: skip


def test_dashed_R_w_and_Jd_merge_with_the_layout_dependencies_and_the_tag(tmp_path: Path) -> None:
    context = SubmissionContext(tag="cj-1a2b3c4d5e-9f8e7d", after=("11",))
    lines = ini_headers(
        tmp_path,
        "-R = select[type==X86_64]\n-w = ended(7)\n-Jd = nightly\n",
        context,
        nodes=2,
        ppn=4,
    )
    assert lines[1:] == [
        "#BSUB -n 8",
        '#BSUB -R "select[type==X86_64] span[ptile=4]"',
        '#BSUB -w "(ended(7)) && done(11)"',
        '#BSUB -Jd "nightly cj-1a2b3c4d5e-9f8e7d"',
    ]


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("-J = other", ("resource '-J'='other': resource jobname='job' already sets -J; "
                        "jobname is clusterjob's own key for it: set jobname instead of -J")),
        ("time = 10\n-W = 20", "resource '-W'='20': resource time='10' already sets -W"),
        ("nodes = 2\n-n = 4", "resource '-n'='4': resource nodes=2 already sets -n"),
        ("P = a\n-P = b", "resource '-P'='b': resource P='a' already sets -P; keep one of the two"),
        # two undashed keys (regression: two -q lines, of which bsub took one)
        ("queue = normal\nq = long", "resource 'q'='long': resource queue='normal' already sets -q; queue is"),
    ],
)  # fmt: skip
def test_a_key_that_repeats_another_resource_is_refused_naming_both(
    tmp_path: Path, resources: str, message: str
) -> None:
    with rendering.refused("lsf", message):
        ini_headers(tmp_path, resources + "\n")


@pytest.mark.parametrize("key", ["-", "---x", "-P proj", "-bad-key"])
def test_a_malformed_dashed_key_is_refused_naming_it(tmp_path: Path, key: str) -> None:
    with rendering.refused("lsf", f"resource {key!r}="):
        ini_headers(tmp_path, f"{key} = true\n")
