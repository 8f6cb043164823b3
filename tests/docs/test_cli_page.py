"""docs/cli.md shows the ``clusterjob`` command as its parser defines it.

The part of the page between :data:`START` and :data:`END` is generated from
``clusterjob.cli.build_parser()``: every command and subcommand with its
synopsis, description, arguments and options (with their help) and the example of its
``--help``. It is built from the parser's own attributes, not from argparse's
formatted help, so it reads the same on every Python. The test fails when the page and
the parser differ; ``python tests/docs/test_cli_page.py`` rewrites the part.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from clusterjob.cli import build_parser

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
START = "<!-- generated from clusterjob.cli.build_parser() by tests/docs/test_cli_page.py -->"
END = "<!-- end of the generated part -->"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    return f" {action.metavar or action.dest.upper()}"


def _positional(action: argparse.Action) -> str:
    name = str(action.metavar or action.dest)
    if action.nargs == "*":
        return f"[{name} ...]"
    if action.nargs == "?":
        return f"[{name}]"
    return name


def _commands(action: argparse.Action) -> dict[str, argparse.ArgumentParser]:
    return dict(getattr(action, "choices", None) or {})


def _section(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    optionals = [a for a in actions if a.option_strings]
    positionals = [a for a in actions if not a.option_strings]
    subcommands = [a for a in positionals if _commands(a)]
    synopsis = " ".join(
        [prog, *(["[options]"] if optionals else []), *(_positional(a) for a in positionals)]
    )
    if subcommands:
        synopsis += " ..."
    lines = [f"## `{prog}`", "", f"`{synopsis}`", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    rows = [(f"`{_positional(a)}`", a.help) for a in positionals if not _commands(a)]
    rows += [
        (
            ", ".join(
                f"`{flag}{_value(a) if flag.startswith('--') else ''}`" for flag in a.option_strings
            ),
            a.help,
        )
        for a in optionals
    ]
    for action in subcommands:
        helps = {choice.dest: choice.help for choice in action._choices_actions}  # type: ignore[attr-defined]
        rows += [
            (f"[`{name}`](#{_anchor(f'{prog} {name}')})", helps.get(name))
            for name in _commands(action)
        ]
    if rows:
        lines += ["| argument | meaning |", "| --- | --- |"]
        lines += [f"| {name} | {_cell(help_text)} |" for name, help_text in rows]
        lines.append("")
    if parser.epilog:
        lines += ["```text", parser.epilog.strip("\n"), "```", ""]
    for action in subcommands:
        for name, subparser in _commands(action).items():
            lines += _section(f"{prog} {name}", subparser)
    return lines


def _anchor(prog: str) -> str:
    """The id MkDocs gives the heading of ``prog`` (backticks dropped, spaces to dashes)."""
    return prog.replace(" ", "-")


def generated_part() -> str:
    return "\n".join([START, "", *_section("clusterjob", build_parser()), END])


def _page_part(page: str) -> str:
    start, end = page.index(START), page.index(END) + len(END)
    return page[start:end]


def test_the_page_shows_every_command_and_option_of_the_parser() -> None:
    page = PAGE.read_text()
    assert START in page and END in page, f"{PAGE} lost its markers {START!r} / {END!r}"
    expected = generated_part()
    shown = _page_part(page)
    diff = "\n".join(
        difflib.unified_diff(
            shown.splitlines(), expected.splitlines(), "page", "parser", lineterm=""
        )
    )
    assert shown == expected, f"{PAGE} is out of date; run python {__file__}\n{diff}"


def test_every_command_has_an_example() -> None:
    """A reader of the page (and of --help) always sees how a command is used."""
    missing = [line for line in generated_part().split("\n## ")[1:] if "```text" not in line]
    assert missing == []


if __name__ == "__main__":
    text = PAGE.read_text()
    PAGE.write_text(text.replace(_page_part(text), generated_part()))
    sys.exit(0)
