"""Command lines built by the pbs, pbspro and lpbs backends (submit, status, cancel, tag lookup)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.status import COMPLETED, RUNNING
from clusterjob_pbs import LPbsBackend, PbsBackend, PbsProBackend
from helpers.commands import environment_first_on_path, fake_command, run_command
from helpers.data import DataFolder
from helpers.results import job_result

DATA = DataFolder(__file__)


def test_submit_passes_stdout_and_stderr_on_the_command_line() -> None:
    """slurm-wlm-torque overrides `#PBS -o/-e` with its own defaults; the command line wins everywhere."""
    job = JobScript("true", jobname="j", backend="pbs", stdout="j.out", stderr="j.err")
    job.filename = "j.pbs"
    assert PbsBackend().cmd_submit(job) == ["qsub", "-o", "j.out", "-e", "j.err", "j.pbs"]
    assert PbsProBackend().cmd_submit(job) == ["qsub", "-o", "j.out", "-e", "j.err", "j.pbs"]
    assert LPbsBackend().cmd_submit(job) == ["lqsub", "-o", "j.out", "-e", "j.err", "j.pbs"]
    plain = JobScript("true", jobname="plain", backend="pbs")
    assert PbsBackend().cmd_submit(plain) == ["qsub", "plain.pbs"]


def test_submit_passes_the_output_files_the_header_has() -> None:
    """Regression: a site backend's default stdout and a dashed ``-e`` reached only the header,
    which slurm-wlm-torque ignores: the job's output went to its own default file."""

    class SiteTorque(PbsBackend):
        name = "sitetorque"

        def prepare_resources(self, resources, context):  # type: ignore[no-untyped-def]
            return super().prepare_resources(
                self.with_defaults(resources, {"stdout": "site.out"}), context
            )

    job = JobScript("true", jobname="j", backend="pbs")
    job.resources["-e"] = "dashed.err"
    job.filename = "j.pbs"
    assert SiteTorque().cmd_submit(job) == ["qsub", "-o", "site.out", "-e", "dashed.err", "j.pbs"]
    assert "#PBS -o site.out" in SiteTorque().resource_headers(job)
    job.resources["stdout"] = "own.out"
    assert SiteTorque().cmd_submit(job)[1:3] == ["-o", "own.out"]


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        ("1234.pbsserver\n", "1234.pbsserver"),  # PBS Pro
        ("4321.torque-server.example.org\n", "4321.torque-server.example.org"),  # TORQUE
        ("1244[].pbsserver\n", "1244[].pbsserver"),  # array job
        ("42\n", "42"),  # slurm-wlm-torque prints the bare number
        ("17.mylaptop.local\n", "17.mylaptop.local"),  # LPBS
        ("qsub: warning: something\n77.srv\n", "77.srv"),
        ("", None),
        ("qsub: Unknown queue MSG=cannot locate queue\n", None),
        ("There was an error running the Slurm sbatch command.\n", None),
    ],
)
def test_get_job_id(response: str, job_id: str | None) -> None:
    assert PbsBackend().get_job_id(response) == job_id


def test_status_commands() -> None:
    torque, pro, lpbs = PbsBackend(), PbsProBackend(), LPbsBackend()
    assert torque.cmd_status(job_result(torque, "12.srv")) == ["qstat", "-f", "12.srv"]
    assert torque.cmd_status(job_result(torque, "12.srv"), finished=True) == [
        "sh",
        "-c",
        'qstat -x -f "$@" 2>/dev/null || qstat -f "$@"',
        "qstat",
        "12.srv",
    ]
    assert pro.cmd_status(job_result(pro, "12.srv")) == ["qstat", "-x", "-f", "12.srv"]
    assert pro.cmd_status(job_result(pro, "12.srv"), finished=True) == [
        "qstat",
        "-x",
        "-f",
        "12.srv",
    ]
    assert lpbs.cmd_status(job_result(lpbs, "3.host.dom")) == ["lqstat", "-f", "3.host.dom"]
    runs = [job_result(torque, "1.s"), job_result(torque, "2.s")]
    assert torque.status_command(runs) == ["qstat", "-f", "1.s", "2.s"]
    assert list(torque.status_command(runs, finished=True) or [])[-2:] == ["1.s", "2.s"]
    assert pro.status_command(runs) == ["qstat", "-x", "-f", "1.s", "2.s"]
    assert lpbs.status_batch_size == 1  # LPBS is asked about one job per command


def test_cancel_commands() -> None:
    assert PbsBackend().cmd_cancel(job_result(PbsBackend(), "12.srv")) == ["qdel", "12.srv"]
    assert PbsProBackend().cmd_cancel(job_result(PbsProBackend(), "12.srv")) == ["qdel", "12.srv"]
    assert LPbsBackend().cmd_cancel(job_result(LPbsBackend(), "3.h.d")) == ["lqdel", "3.h.d"]


def test_tag_lookup_command_names_the_user_then_lists_every_job() -> None:
    assert PbsProBackend().tag_lookup_command("cj-1") == [
        "sh",
        "-c",
        "id -un && exec qstat -x -f",
        "qstat",
    ]
    assert (
        PbsProBackend().tag_lookup_command("cj-1", finished=True) is None
    )  # -x covers finished jobs


def _fake_qstat(folder: Path, script: str) -> dict[str, str]:
    """The environment of a command that finds a ``qstat`` running ``script`` first on PATH."""
    return environment_first_on_path(fake_command(folder, "qstat", script).parent)


def test_finished_status_falls_back_to_plain_qstat_where_x_is_unknown(tmp_path: Path) -> None:
    """Like slurm-wlm-torque: `qstat -x` is a usage error, `qstat -f ID` works."""
    env = _fake_qstat(
        tmp_path / "bin",
        f"""
case "$1" in -x) echo "Unknown option: x" >&2; exit 2;; esac
[ "$1" = -f ] && [ "$2" = 34 ] && cat {DATA / "slurm_torque_qstat_f_completed.txt"} && exit 0
exit 153
""",
    )
    backend = PbsBackend()
    out = run_command(backend.cmd_status(job_result(backend, "34"), finished=True), env)
    assert out.stdout == DATA.read("slurm_torque_qstat_f_completed.txt")
    assert out.stderr == ""  # the expected failure of -x is not reported as an error
    assert backend.parse_status(out, ["34"], finished=True)["34"] == COMPLETED


def test_finished_status_uses_history_where_x_works(tmp_path: Path) -> None:
    """Like PBS Pro used through the pbs backend: the finished job is only visible with -x."""
    env = _fake_qstat(
        tmp_path / "bin",
        f"""
[ "$1" = -x ] && cat {DATA / "pbspro_qstat_xf_finished.txt"} && exit 0
echo "qstat: 1234.pbsserver Job has finished, use -x or -H to obtain historical job information" >&2
exit 35
""",
    )
    backend = PbsBackend()
    assert run_command(backend.cmd_status(job_result(backend, "1234.pbsserver")), env).stdout == ""
    out = run_command(backend.cmd_status(job_result(backend, "1234.pbsserver"), finished=True), env)
    assert backend.parse_status(out, ["1234.pbsserver"], finished=True) == {
        "1234.pbsserver": COMPLETED
    }


def test_lpbs_status_reads_lqstat_exit_status(tmp_path: Path) -> None:
    lqstat = fake_command(
        tmp_path / "bin",
        "lqstat",
        f'[ "$2" = 17.mylaptop.local ] && cat {DATA / "lpbs_lqstat_f_running.txt"}\n'
        '[ "$2" = 19.mylaptop.local ] && echo "lqstat: LPBS_HOME is not set" >&2 && exit 1\nexit 0\n',
    )
    env = environment_first_on_path(lqstat.parent)
    backend = LPbsBackend()

    def ask(job_id: str, finished: bool) -> int | None:
        command = backend.status_command([job_result(backend, job_id)], finished) or []
        return backend.parse_status(run_command(command, env), [job_id], finished)[job_id]

    assert ask("17.mylaptop.local", False) == RUNNING
    assert ask("18.mylaptop.local", False) is None  # not listed: asked again with finished=True
    assert ask("18.mylaptop.local", True) == COMPLETED
    assert ask("19.mylaptop.local", True) is None  # lqstat failed: no conclusion


def test_find_tag_command_output_is_parsed(tmp_path: Path) -> None:
    """The lookup through a shell, with a stand-in qstat printing PBS Pro `qstat -x -f` output."""
    listing = "".join(
        DATA.read("pbspro_qstat_xf_all_tagged.txt").splitlines(keepends=True)[1:]  # no user name
    )
    (tmp_path / "answer").write_text(listing)
    env = _fake_qstat(
        tmp_path / "bin", f'[ "$1 $2" = "-x -f" ] && cat {tmp_path}/answer && exit 0\nexit 1\n'
    )
    backend = PbsProBackend()
    out = run_command(backend.tag_lookup_command("cj-1a2b3c4d5e-9f8e7d") or [], env)
    assert (
        out.stdout.split("\n", 1)[0]
        == subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    )
    assert backend.parse_tag_lookup(out, "cj-1a2b3c4d5e-9f8e7d") == ["1251.pbsserver"]
