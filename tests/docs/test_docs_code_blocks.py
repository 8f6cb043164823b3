"""The code in the documentation runs, and the files it shows are the real ones.

For every page in :data:`PAGES` (paths from the repository root):

- Its `` ```python `` blocks run in the order of the page, all in one namespace (a
  later block uses what an earlier one defined), in a fresh temporary working
  directory, with the pristine ``JobScript`` class of ``tests/conftest.py``. A block
  shows what it promises with ``assert``: a block that only prints checks only that
  it runs.
- A block that cannot run in the suite opts out with the first line
  ``# not run: <the reason>``, which the page's readers see too. An empty reason fails.
- A block in any language whose fence has a ``title="<path>"`` (Material for MkDocs
  shows it above the block) is the file at that path from the repository root, byte for
  byte; a title that names no file fails. So a page that shows an example's source
  cannot drift from it. Such a python block also runs like any other.
- Other blocks (``console``, ``toml``, ``text``, ...) are shown, not run.

To have a page checked, add it to :data:`PAGES`.
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The pages whose code blocks are checked.
PAGES = [
    "docs/adding-backends.md",
    "docs/migration.md",
    "docs/remote.md",
    "docs/tutorial.md",
    "examples/clusterjob-mysite/README.md",
]

#: The first line by which a python block opts out of running, with its reason.
NOT_RUN = re.compile(r"^# not run:(?P<reason>.*)$")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_TITLE = re.compile(r'\btitle="(?P<title>[^"]*)"')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    #: The line of the page (from 1) that holds the block's first line of code.
    line: int
    language: str
    title: str | None
    source: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def reason_not_to_run(self) -> str | None:
        """The reason a ``# not run: <reason>`` first line gives, or None (the block runs).

        Raises:
            ValueError: for the marker without a reason.
        """
        first = self.source.split("\n", 1)[0]
        marker = NOT_RUN.match(first)
        if marker is None:
            return None
        reason = marker.group("reason").strip()
        if not reason:
            raise ValueError(f"{self.where}: '# not run:' must say why the block cannot run")
        return reason


def code_blocks(page: str, text: str) -> list[Block]:
    """The fenced code blocks of ``text`` (the page ``page``), in order.

    A block opens with three or more backticks or tildes and an info string
    (language first, then attributes such as ``title="..."``) and closes with a
    fence of the same character, at least as long. The indentation of the opening
    fence (a block inside a list item) is removed from the block's lines.
    """
    blocks = []
    lines = text.split("\n")
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        number += 1
        if opening is None:
            continue
        indent, fence, info = opening.group("indent", "fence", "info")
        body: list[str] = []
        start = number + 1
        while number < len(lines):
            line = lines[number]
            number += 1
            closing = _FENCE.match(line)
            if closing and closing.group("fence").startswith(fence) and not closing["info"].strip():
                break
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
        else:
            raise ValueError(f"{page}:{start - 1}: the code block that opens here never closes")
        words = info.split()
        title = _TITLE.search(info)
        blocks.append(
            Block(
                page,
                start,
                words[0] if words else "",
                title.group("title") if title else None,
                "\n".join(body) + "\n" if body else "",
            )
        )
    return blocks


def page_blocks(page: str) -> list[Block]:
    return code_blocks(page, (ROOT / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_the_python_blocks_of_the_page_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = [block for block in page_blocks(page) if block.language == "python"]
    assert blocks, f"{page} has no python block: take it out of PAGES"
    monkeypatch.chdir(tmp_path)
    # A module of its own, in sys.modules, so that classes defined in the blocks (and
    # dataclasses reading their string annotations) find their module.
    module = types.ModuleType("docs_" + re.sub(r"\W", "_", page))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in blocks:
        if block.reason_not_to_run() is not None:
            continue
        # Blank lines before the code, so that a traceback names the page's own line.
        code = compile("\n" * (block.line - 1) + block.source, str(ROOT / page), "exec")
        exec(code, module.__dict__)  # noqa: S102 - running the page's code is the point


@pytest.mark.parametrize("page", PAGES)
def test_blocks_titled_with_a_path_are_that_file(page: str) -> None:
    for block in page_blocks(page):
        if block.title is None:
            continue
        path = ROOT / block.title
        assert path.is_file(), (
            f"{block.where}: title={block.title!r} names no file of the repository "
            "(a title is the path of the file the block shows, from the repository root)"
        )
        assert block.source == path.read_text(encoding="utf-8"), (
            f"{block.where}: the block differs from {block.title}: copy the file into the page again"
        )


# -- the reader of the pages ----------------------------------------------------------

PAGE = """\
Text.

```python
x = 1
```

- a list item:

    ~~~~python title="examples/x.py"
    y = x + 1
    ```
    ~~~~

```console
$ true
```

```python
# not run: needs a real SLURM
submit()
```
"""


def test_code_blocks_are_read_with_language_title_and_the_line_they_start_on() -> None:
    assert code_blocks("p.md", PAGE) == [
        Block("p.md", 4, "python", None, "x = 1\n"),
        Block("p.md", 10, "python", "examples/x.py", "y = x + 1\n```\n"),
        Block("p.md", 15, "console", None, "$ true\n"),
        Block("p.md", 19, "python", None, "# not run: needs a real SLURM\nsubmit()\n"),
    ]


def test_a_block_opts_out_only_with_a_reason() -> None:
    blocks = code_blocks("p.md", PAGE)
    assert [block.reason_not_to_run() for block in blocks] == [
        None,
        None,
        None,
        "needs a real SLURM",
    ]
    with pytest.raises(
        ValueError, match=r"^p.md:2: '# not run:' must say why the block cannot run$"
    ):
        code_blocks("p.md", "```python\n# not run:\nsubmit()\n```\n")[0].reason_not_to_run()


def test_a_block_that_never_closes_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^p.md:3: the code block that opens here never closes$"):
        code_blocks("p.md", "Text.\n\n```python\nx = 1\n")
