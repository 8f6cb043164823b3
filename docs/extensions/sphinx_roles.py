"""A griffe extension for the API reference: Sphinx roles in docstrings become links.

The docstrings cross-reference each other the Sphinx way (``:class:`~clusterjob.AsyncResult```,
``:meth:`render_script```), which mkdocstrings would print literally. This turns each
role into an optional mkdocs-autorefs reference: a link where the target is on the site,
the name in code font where it is not (a private helper, the standard library), so the
build stays free of warnings without a page for every private name.
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


def walk(obj: griffe.Object) -> None:
    """Rewrite the docstrings of ``obj`` and of all its own members (aliases are skipped)."""
    if obj.docstring is not None:
        obj.docstring.value = link_roles(obj, obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            walk(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Applies :func:`link_roles` to every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        walk(pkg)
