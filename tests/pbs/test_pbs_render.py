"""Resource headers and rendered scripts of the pbs (TORQUE), pbspro and lpbs backends."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.backends import ResourcesNotSupportedError, SubmissionContext
from clusterjob_pbs.backend import NODELIST_PREAMBLE
from helpers.documented import PRINTENV_RESOURCES
from helpers.rendering import headers, ini_headers, refused

TAG = SubmissionContext(tag="cj-1a2b3c4d5e-9f8e7d")

# The "Parallelization Paradigms" table of the documentation.
PARADIGMS = [
    # (nodes, ppn, threads), PBS Pro, PBS/TORQUE
    ((2, 32, 1), "select=2:ncpus=32:mpiprocs=32:ompthreads=1", "nodes=2:ppn=32"),
    ((1, 1, 32), "select=1:ncpus=32:mpiprocs=1:ompthreads=32", "nodes=1:ppn=32"),
    ((4, 2, 16), "select=4:ncpus=32:mpiprocs=2:ompthreads=16", "nodes=4:ppn=32"),
]


@pytest.mark.parametrize(("layout", "pbspro", "torque"), PARADIGMS)
def test_parallelization_table_header_lines(
    layout: tuple[int, int, int], pbspro: str, torque: str
) -> None:
    nodes, ppn, threads = layout
    assert headers("pbspro", nodes=nodes, ppn=ppn, threads=threads) == [
        "#PBS -N job",
        f"#PBS -l {pbspro}",
    ]
    assert headers("pbs", nodes=nodes, ppn=ppn, threads=threads) == [
        "#PBS -N job",
        f"#PBS -l {torque}",
    ]
    assert headers("lpbs", nodes=nodes, ppn=ppn, threads=threads) == [
        "#PBS -N job",
        f"#PBS -l {torque}",
    ]


@pytest.mark.parametrize(("layout", "pbspro", "torque"), PARADIGMS)
def test_parallelization_table_rendered_script(
    layout: tuple[int, int, int], pbspro: str, torque: str
) -> None:
    nodes, ppn, threads = layout
    body = "export OMP_NUM_THREADS={threads}\nmpirun ./a.out"
    job = JobScript(body, jobname="para", backend="pbspro", nodes=nodes, ppn=ppn, threads=threads)
    assert str(job) == (
        f"#!/bin/bash\n#PBS -N para\n#PBS -l {pbspro}\nexport OMP_NUM_THREADS={threads}\nmpirun ./a.out"
    )
    job.backend = "pbs"
    assert str(job) == (
        f"#!/bin/bash\n#PBS -N para\n#PBS -l {torque}\nexport OMP_NUM_THREADS={threads}\nmpirun ./a.out"
    )


def test_common_resources_torque() -> None:
    job = JobScript(
        "cd $CLUSTERJOB_WORKDIR\necho $CLUSTERJOB_ID ${CLUSTERJOB_NAME} $CLUSTERJOB_SUBMIT_HOST",
        backend="pbs",
        **PRINTENV_RESOURCES,
    )
    assert str(job) == "\n".join(  # noqa: FLY002 - a list reads like the script
        [
            "#!/bin/bash",
            "#PBS -N printenv",
            "#PBS -q test",
            "#PBS -l walltime=00:05:00",
            "#PBS -l nodes=1:ppn=1",
            "#PBS -l mem=100mb",
            "#PBS -o printenv.out",
            "#PBS -e printenv.err",
            "cd $PBS_O_WORKDIR",
            "echo $PBS_JOBID ${PBS_JOBNAME} $PBS_O_HOST",
        ]
    )


def test_mem_is_per_node_so_torque_asks_for_the_total_and_pbspro_per_chunk() -> None:
    assert headers("pbs", nodes=3, mem=2000)[1:] == ["#PBS -l nodes=3:ppn=1", "#PBS -l mem=6000mb"]
    assert headers("pbspro", nodes=3, mem=2000)[1:] == [
        "#PBS -l select=3:ncpus=1:mpiprocs=1:ompthreads=1:mem=2000mb"
    ]
    assert headers("pbspro", mem=512)[1:] == ["#PBS -l select=1:mem=512mb"]


@pytest.mark.parametrize(
    ("time", "walltime"),
    [
        ("10", "00:10:00"),
        ("10:30", "00:10:30"),
        ("1:10:30", "01:10:30"),
        ("1-0", "24:00:00"),
        ("1-1:10", "25:10:00"),
        ("1-1:10:30", "25:10:30"),
        ("1:1:10:30", "25:10:30"),
        (90, "01:30:00"),
    ],
)
def test_time_becomes_normalized_walltime(time: object, walltime: str) -> None:
    assert headers("pbs", time=time)[1:] == [f"#PBS -l walltime={walltime}"]
    assert headers("pbspro", time=time)[1:] == [f"#PBS -l walltime={walltime}"]


def test_arbitrary_keys_single_letter_options_and_long_resources() -> None:
    lines = headers(
        "pbs",
        j="oe",
        V=True,
        k=False,
        A=None,
        software="abaqus",
        naccesspolicy="singlejob",
        gpus=True,
    )
    assert lines == [
        "#PBS -N job",
        "#PBS -V",
        "#PBS -j oe",
        "#PBS -l gpus=true",
        "#PBS -l naccesspolicy=singlejob",
        "#PBS -l software=abaqus",
    ]


def test_values_with_spaces_are_quoted_for_qsub() -> None:
    assert headers("pbs", M="a@b.org c@d.org")[1:] == ['#PBS -M "a@b.org c@d.org"']
    assert headers("pbs", stdout="my out.txt")[1:] == ['#PBS -o "my out.txt"']


def test_dependency_and_additional_attributes_share_one_W() -> None:
    dep = SubmissionContext(after=("12.srv", "13.srv"))
    assert headers("pbs", dep)[1:] == ["#PBS -W depend=afterok:12.srv:13.srv"]
    assert headers("pbspro", dep, W="group_list=proj")[1:] == [
        "#PBS -W group_list=proj,depend=afterok:12.srv:13.srv"
    ]
    assert headers("pbs", W="group_list=proj")[1:] == ["#PBS -W group_list=proj"]


def test_lpbs_refuses_dependencies_it_would_ignore() -> None:
    with pytest.raises(
        ResourcesNotSupportedError, match="backend 'lpbs' cannot express job dependencies"
    ):
        headers("lpbs", SubmissionContext(after=("3.host.dom",)))


def test_pbspro_tag_goes_into_variable_list_and_merges_with_v() -> None:
    assert headers("pbspro", TAG)[1:] == ["#PBS -v CLUSTERJOB_TAG=cj-1a2b3c4d5e-9f8e7d"]
    assert headers("pbspro", TAG, v="A=1")[1:] == [
        "#PBS -v A=1,CLUSTERJOB_TAG=cj-1a2b3c4d5e-9f8e7d"
    ]


def test_torque_and_lpbs_carry_no_tag() -> None:
    """slurm-wlm-torque's qstat shows no Variable_List and `-v` replaces the job environment there."""
    for backend in ("pbs", "lpbs"):
        assert headers(backend, TAG) == ["#PBS -N job"]
        assert (
            JobScript("true", jobname="j", backend=backend)
            ._get_backend()
            .tag_lookup_command("cj-x")
            is None
        )


def test_nodelist_is_defined_from_the_nodefile_only_when_used() -> None:
    job = JobScript(
        "echo start\nfor h in ${CLUSTERJOB_NODELIST//,/ }; do ssh $h hostname; done",
        jobname="n",
        backend="pbs",
    )
    rendered = str(job).split("\n")
    assert rendered[2] == NODELIST_PREAMBLE
    assert rendered[3] == "echo start"
    assert "$PBS_NODEFILE" in NODELIST_PREAMBLE
    plain = JobScript("echo $CLUSTERJOB_NODELISTX", jobname="n", backend="pbs")
    assert NODELIST_PREAMBLE not in str(plain)


def test_nodelist_preamble_lists_distinct_hosts(tmp_path: Path) -> None:
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("n1\nn1\nn2\nn2\nn3\n")
    script = NODELIST_PREAMBLE + '\necho "$CLUSTERJOB_NODELIST"'
    out = subprocess.run(
        ["bash", "-c", script],
        env={"PBS_NODEFILE": str(nodefile), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "n1,n2,n3\n"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"nodes": 0}, "cannot express resource nodes=0: nodes must be a positive integer"),
        ({"ppn": "two"}, "cannot express resource ppn='two': ppn must be a positive integer"),
        ({"threads": -1}, "cannot express resource threads=-1"),
        ({"mem": "2GB"}, "cannot express resource mem='2GB': mem is the memory per node in MB"),
        (
            {"time": "1 1:10:30"},
            "cannot express resource time='1 1:10:30': a walltime is minutes, minutes:seconds",
        ),
        (
            {"bad key": 1},
            "cannot express resource bad key=1: a resource name must start with a letter",
        ),
    ],
)
def test_inexpressible_requests_name_the_key(resources: dict[str, object], message: str) -> None:
    for backend in ("pbs", "pbspro"):
        with pytest.raises(
            ResourcesNotSupportedError, match="backend '" + backend + "' " + re.escape(message)
        ):
            headers(backend, **resources)


def test_jobname_with_whitespace_is_refused() -> None:
    with pytest.raises(ResourcesNotSupportedError, match="cannot express jobname='my job'"):
        JobScript("true", jobname="my job", backend="pbs").render_script("true", jobscript=True)


# -- INI files written for the original clusterjob: keys with their dashes ---------------


@pytest.mark.parametrize("backend", ["pbs", "pbspro", "lpbs"])
def test_dashed_keys_from_an_ini_file_are_those_qsub_options(tmp_path: Path, backend: str) -> None:
    lines = ini_headers(backend, tmp_path, """\
        -A = myaccount
        -j = oe
        -V = true
        -r = false
        -M = a@b.org c@d.org
        -l = software=abaqus,gpus=1
        """)  # fmt: skip
    assert lines == [
        "#PBS -N job",
        "#PBS -A myaccount",
        '#PBS -M "a@b.org c@d.org"',
        "#PBS -V",
        "#PBS -j oe",
        "#PBS -l software=abaqus,gpus=1",
    ]


def test_dashed_keys_render_exactly_as_the_undashed_ones_did(tmp_path: Path) -> None:
    assert ini_headers("pbs", tmp_path, "-A = acct\n-j = oe\n") == headers("pbs", A="acct", j="oe")


def test_a_dashed_key_is_never_a_resource_and_long_options_keep_two_dashes(tmp_path: Path) -> None:
    """``qsub`` has no long options: such a key is written as given, for qsub to judge."""
    assert ini_headers("pbs", tmp_path, "-koe = true\n--foo = two words\nsoftware = abaqus\n") == [
        "#PBS -N job",
        '#PBS --foo="two words"',
        "#PBS -koe",
        "#PBS -l software=abaqus",
    ]


def test_dashed_W_and_v_merge_with_dependencies_and_the_tag(tmp_path: Path) -> None:
    dep = SubmissionContext(after=("12.srv",))
    assert ini_headers("pbs", tmp_path, "-W = group_list=proj\n", dep)[1:] == [
        "#PBS -W group_list=proj,depend=afterok:12.srv"
    ]
    assert ini_headers("pbspro", tmp_path, "-v = A=1\n", TAG)[1:] == [
        "#PBS -v A=1,CLUSTERJOB_TAG=cj-1a2b3c4d5e-9f8e7d"
    ]


@pytest.mark.parametrize(
    ("backend", "resources", "message"),
    [
        ("pbs", "-N = other", (
            "resource '-N'='other': resource jobname='job' already sets -N; "
            "jobname is clusterjob's own key for it: set jobname instead of -N")),
        ("pbs", "queue = batch\n-q = long", "resource '-q'='long': resource queue='batch' already sets -q"),
        ("pbs", "-o = out.txt\nstdout = job.out", "resource '-o'='out.txt': resource stdout='job.out' already sets -o"),
        ("pbs", "A = acct1\n-A = acct2", "resource '-A'='acct2': resource A='acct1' already sets -A; keep one of the two"),
        ("pbs", "time = 10\n-l = walltime=1:00:00", (
            "resource '-l'='walltime=1:00:00': resource time='10' already sets -l walltime")),
        ("pbs", "nodes = 1\n-l = nodes=2:ppn=4", "resource '-l'='nodes=2:ppn=4': resource nodes=1 already sets -l nodes"),
        ("pbspro", "threads = 4\n-l = select=1:ncpus=4", (
            "resource '-l'='select=1:ncpus=4': resource threads=4 already sets -l select")),
        ("pbs", "software = abaqus\n-l = software=ansys", (
            "resource '-l'='software=ansys': resource software='abaqus' already sets -l software")),
        # two undashed keys (regression: two -q lines, of which qsub took one)
        ("pbs", "queue = batch\nq = long", "resource 'q'='long': resource queue='batch' already sets -q; queue is"),
        ("pbspro", "queue = batch\nq = long", "resource 'q'='long': resource queue='batch' already sets -q; queue is"),
    ],
)  # fmt: skip
def test_a_key_that_repeats_another_resource_is_refused_naming_both(
    tmp_path: Path, backend: str, resources: str, message: str
) -> None:
    with refused(backend, message):
        ini_headers(backend, tmp_path, resources + "\n")


def test_layout_resources_of_pbspro_do_not_clash_with_a_job_wide_walltime(tmp_path: Path) -> None:
    assert ini_headers("pbspro", tmp_path, "nodes = 2\n-l = walltime=1:00:00\n")[1:] == [
        "#PBS -l select=2:ncpus=1:mpiprocs=1:ompthreads=1",
        "#PBS -l walltime=1:00:00",
    ]


@pytest.mark.parametrize(
    ("key", "remedy"),
    [
        ("-", ""),
        ("---x", ""),
        ("--", ""),
        ("-A B", "; write the option's value after the '=' of the INI line: -A = B"),
        ("-j oe", "; write the option's value after the '=' of the INI line: -j = oe"),
        ("-l  walltime", "; write the option's value after the '=' of the INI line: -l = walltime"),
        ("--mail--type", ""),
    ],
)
def test_a_malformed_dashed_key_is_refused_naming_it(tmp_path: Path, key: str, remedy: str) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        ini_headers("pbs", tmp_path, f"{key} = true\n")
    assert str(err.value) == (
        f"backend 'pbs' cannot express resource {key!r}=True: an option given with its dashes is one dash "
        "and a name (-A, -hold_jid) or two dashes and a name (--qos, --mail-type)" + remedy
    )
