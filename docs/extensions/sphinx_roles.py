"""A griffe extension for the API reference: the reST of the docstrings, as Markdown.

The docstrings are written the Sphinx way, which mkdocstrings would print literally:

- cross-references (``:class:`~clusterjob.AsyncResult```, ``:meth:`render_script```)
  become optional mkdocs-autorefs references: a link where the target is on the site,
  the name in code font where it is not (a private helper, the standard library), so
  the build stays free of warnings without a page for every private name;
- a literal block (a paragraph ending in ``::``, then an indented block) and a run of
  ``>>>`` lines become fenced code blocks.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

#: ``:role:`target``` and ``:role:`~dotted.target```.
ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")


def resolve_target(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as Python would see it from ``obj``'s scope.

    A dotted name is resolved by its first part (``Walltime.read``); a name that
    the scope does not know (an absolute path, the standard library) stays as it is.
    """
    head, dot, rest = target.partition(".")
    try:
        return obj.resolve(head) + dot + rest
    except (griffe.NameResolutionError, KeyError, AttributeError):
        return target


def link_roles(obj: griffe.Object, text: str) -> str:
    """``text`` with every Sphinx role replaced by an optional autorefs reference."""

    def replace(match: re.Match[str]) -> str:
        target = match.group("target")
        shown = target.rsplit(".", 1)[-1] if match.group("tilde") else target
        identifier = resolve_target(obj, target)
        return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(replace, text)


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip())


def fenced(lines: list[str], indent: int, language: str) -> list[str]:
    """``lines`` as a fenced block at ``indent``, rounded up to a multiple of four: Python-Markdown
    keeps a block inside a list item (``1. text`` continued at three spaces) only at four."""
    indent = -(-indent // 4) * 4
    shift = min(indentation(line) for line in lines if line.strip())
    body = [" " * indent + line[shift:] if line.strip() else "" for line in lines]
    return [" " * indent + "```" + language, *body, " " * indent + "```"]


def indented_block(lines: list[str], start: int, indent: int) -> list[str]:
    """The lines from ``start`` on that are blank or indented deeper than ``indent``,
    without trailing blank lines."""
    end = start
    while end < len(lines) and (not lines[end].strip() or indentation(lines[end]) > indent):
        end += 1
    block = lines[start:end]
    while block and not block[-1].strip():
        block.pop()
    return block


def fence_code(text: str) -> str:
    """``text`` with its reST literal blocks and ``>>>`` examples as fenced code blocks."""
    lines = text.split("\n")
    out: list[str] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        if line.lstrip().startswith(">>>"):
            example = [line]
            while number + len(example) < len(lines) and lines[number + len(example)].strip():
                example.append(lines[number + len(example)])
            out.extend(fenced(example, indentation(line), "pycon"))
            number += len(example)
            continue
        following_blank = number + 1 < len(lines) and not lines[number + 1].strip()
        if line.rstrip().endswith("::") and following_blank:
            block = indented_block(lines, number + 2, indentation(line))
            if block:
                out.extend([line.rstrip()[:-1], ""])  # "text::" reads "text:"
                out.extend(fenced(block, indentation(line), "python"))
                number += 2 + len(block)
                continue
        out.append(line)
        number += 1
    return "\n".join(out)


def walk(obj: griffe.Object) -> None:
    """Rewrite the docstrings of ``obj`` and of all its own members (aliases are skipped)."""
    if obj.docstring is not None:
        obj.docstring.value = fence_code(link_roles(obj, obj.docstring.value))
    for member in obj.members.values():
        if not member.is_alias:
            walk(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Applies :func:`link_roles` and :func:`fence_code` to every docstring of a package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        walk(pkg)
