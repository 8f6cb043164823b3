"""The tutorial's SLURM section runs on the real SLURM cluster, as a reader would run it.

``test_docs_code_blocks.py`` runs the tutorial without a scheduler, so its SLURM
submission opts out (``# not run: needs a SLURM cluster ...``). Here the page runs in
order again up to the end of that section, this time with those blocks too, on the
cluster that ``tests/schedulers/slurm.sh`` starts. Blocks that opt out for another
reason (a remote login node) stay out.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.status import COMPLETED

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
PAGE = "docs/tutorial.md"
#: The reason by which the tutorial's SLURM blocks opt out of the scheduler-free run.
NEEDS_SLURM = "needs a SLURM cluster"
#: The section after the SLURM one: the run stops before its first block.
NEXT_SECTION = "## 6."


def page_reader(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The page reader of ``test_docs_code_blocks.py`` (test modules cannot import each other).

    It is registered in ``sys.modules`` while the test runs: its dataclass needs its module.
    """
    spec = importlib.util.spec_from_file_location(
        "docs_page_reader", Path(__file__).with_name("test_docs_code_blocks.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def first_line_of(heading: str, text: str) -> int:
    """The line number (from 1) of the heading that starts with ``heading``."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(heading):
            return number
    raise AssertionError(f"{PAGE} has no heading starting with {heading!r}")


def test_the_tutorial_runs_on_slurm_up_to_its_remote_section(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = page_reader(monkeypatch)
    text = (ROOT / PAGE).read_text(encoding="utf-8")
    end = first_line_of(NEXT_SECTION, text)
    blocks = [b for b in reader.code_blocks(PAGE, text) if b.language == "python" and b.line < end]
    slurm_blocks = [b for b in blocks if (b.reason_not_to_run() or "").startswith(NEEDS_SLURM)]
    assert slurm_blocks, f"{PAGE} has no block opting out with '# not run: {NEEDS_SLURM} ...'"
    partition = slurm_env.get("SLURM_PARTITION", "debug")
    assert re.search(rf'queue="{partition}"', text), (
        f"the tutorial's SLURM job must use the test cluster's partition {partition!r}"
    )
    monkeypatch.chdir(tmp_path)
    JobScript.max_sleep_interval = 2  # the jobs take seconds: do not wait minutes between polls
    module = types.ModuleType("docs_tutorial_on_slurm")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in blocks:
        reason = block.reason_not_to_run()
        if reason is not None and not reason.startswith(NEEDS_SLURM):
            continue
        code = compile("\n" * (block.line - 1) + block.source, str(ROOT / PAGE), "exec")
        exec(code, module.__dict__)  # noqa: S102 - running the page's code is the point
    result = module.__dict__["result"]
    assert result.backend.name == "slurm" and result.status == COMPLETED
    (output,) = tmp_path.glob(f"hello-{result.job_id}.out")
    assert output.read_text().startswith(f"Hello from {result.job_id} on ")
