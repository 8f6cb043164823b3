"""The migration guide quotes the error an old pickle cache file gets, word for word.

Users search for the message they see; the page must show the one clusterjob prints.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript
from clusterjob.errors import CacheError

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "migration.md"
#: The file the page's example names.
EXAMPLE_FILE = "cache/clusterjob.run-42.cache"


def quoted_message() -> str:
    """The ``text`` block of the page's section on old pickle cache files, on one line."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("### An old pickle cache file") :]
    block = re.search(r"```text\n(?P<message>.*?)\n```", section, re.DOTALL)
    assert block is not None, "the section on old pickle cache files quotes no message"
    return " ".join(block.group("message").split())


def write_old_cache_file(path: Path) -> None:
    """A cache file as the original clusterjob left it: a pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"job_id": "123", "status": -1}))


def test_the_page_quotes_what_submit_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_old_cache_file(tmp_path / EXAMPLE_FILE)
    JobScript.cache_folder = "cache"
    with pytest.raises(CacheError) as raised:
        JobScript("true", jobname="run", backend="local").submit(cache_id="run-42")
    assert " ".join(str(raised.value).split()) == quoted_message()


def test_load_raises_the_same_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_old_cache_file(tmp_path / EXAMPLE_FILE)
    with pytest.raises(CacheError) as raised:
        AsyncResult().load(EXAMPLE_FILE)
    assert " ".join(str(raised.value).split()) == quoted_message()
