"""The tutorial's SLURM sections run on the real SLURM cluster, as a reader would run them.

``test_docs_code_blocks.py`` runs the tutorial without a scheduler, so its SLURM
submissions opt out (``# not run: needs a SLURM cluster ...``): the job of section 5
and the sweep packed into an array of section 10. Here the whole page runs in order
again, this time with those blocks too, on the cluster that
``tests/schedulers/slurm.sh`` starts. Blocks that opt out for another
reason (a remote login node) stay out; ``tests/remote/test_tutorial_remote.py`` runs
the remote section with :func:`run_tutorial` too.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from clusterjob import JobScript
from clusterjob.status import CANCELLED, COMPLETED

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
PAGE = "docs/tutorial.md"
#: The reason by which the tutorial's SLURM blocks opt out of the scheduler-free run.
NEEDS_SLURM = "needs a SLURM cluster"


def load_beside(name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The test module ``name`` of this folder (test modules cannot import each other).

    It is registered in ``sys.modules`` while the test runs: a dataclass needs its module.
    """
    spec = importlib.util.spec_from_file_location(
        f"docs_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def line_of_heading(heading: str, text: str) -> int:
    """The line number (from 1) of the heading that starts with ``heading``."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(heading):
            return number
    raise AssertionError(f"{PAGE} has no heading starting with {heading!r}")


def run_tutorial(
    monkeypatch: pytest.MonkeyPatch,
    until: str | None,
    also_run: Sequence[str],
    replace: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run the tutorial's python blocks in order up to the heading ``until`` (None: to
    the end), in the current folder, and return their namespace.

    A block that opts out runs when its reason starts with one of ``also_run``; a
    text of ``replace`` is replaced in the blocks that opted out (a test host for the
    page's host name), never in the others.
    """
    reader = load_beside("test_docs_code_blocks", monkeypatch)
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    end = line_of_heading(until, text) if until else text.count("\n") + 2
    blocks = [b for b in reader.code_blocks(PAGE, text) if b.language == "python" and b.line < end]
    for reason in also_run:
        assert any((b.reason_not_to_run() or "").startswith(reason) for b in blocks), (
            f"{PAGE} has no block before {until!r} opting out with '# not run: {reason} ...'"
        )
    module = types.ModuleType("docs_tutorial_on_schedulers")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    replaced: set[str] = set()
    for block in blocks:
        reason = block.reason_not_to_run()
        source = block.source
        if reason is not None:
            if not reason.startswith(tuple(also_run)):
                continue
            for old, new in (replace or {}).items():
                if old in source:
                    source = source.replace(old, new)
                    replaced.add(old)
        code = compile("\n" * (block.line - 1) + source, str(ROOT / PAGE), "exec")
        exec(code, module.__dict__)  # noqa: S102 - running the page's code is the point
    missing = set(replace or {}) - replaced
    assert not missing, f"{PAGE}: no block that opted out holds {sorted(missing)} any more"
    return module.__dict__


def test_the_tutorial_runs_on_slurm_but_for_its_remote_section(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 5's job, and section 10's sweep: one array, each task its own job and status."""
    partition = slurm_env.get("SLURM_PARTITION", "debug")
    assert re.search(f'queue="{partition}"', (ROOT / PAGE).read_text(encoding="utf-8")), (
        f"the tutorial's SLURM job must use the test cluster's partition {partition!r}"
    )
    monkeypatch.chdir(tmp_path)
    JobScript.max_sleep_interval = 2  # the jobs take seconds: do not wait minutes between polls
    sweep = tmp_path / "sweep"  # the rootdir of section 10's jobs, with their program
    sweep.mkdir()
    (sweep / "simulate.py").write_text('import sys\nprint("seed", sys.argv[-1])\n')
    namespace = run_tutorial(monkeypatch, until=None, also_run=[NEEDS_SLURM])
    result = namespace["result"]
    assert result.backend.name == "slurm" and result.status == COMPLETED
    (output,) = tmp_path.glob(f"hello-{result.job_id}.out")
    assert output.read_text().startswith(f"Hello from {result.job_id} on ")
    sims = namespace["results"]
    array = sims[0].job_id.split("_")[0]
    assert [r.job_id for r in sims] == [f"{array}_{task}" for task in (1, 2, 3)]
    assert [r.jobname for r in sims] == ["sim-0", "sim-1", "sim-2"]
    assert [r.status for r in sims] == [COMPLETED, CANCELLED, COMPLETED]
    assert [(sweep / f"sim-{seed}.out").read_text() for seed in (0, 2)] == [
        "seed 0\n",
        "seed 2\n",
    ]
