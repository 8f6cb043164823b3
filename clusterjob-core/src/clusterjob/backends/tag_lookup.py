"""Crash recovery: finding the job of an interrupted submission by the tag it carries.

A backend that writes ``context.tag`` into its jobs looks them up with
:meth:`TagLookup.tag_lookup_command` and :meth:`TagLookup.parse_tag_lookup`;
backends written against the earlier names (``cmd_find_tag``,
``get_job_ids_for_tag``) are served through adapters here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ClassVar

from clusterjob.backends.overrides import InterfacePart, accepts_keyword
from clusterjob.commands import Command, CommandResult

__all__ = ["TagLookup"]


class TagLookup(InterfacePart):
    """The tag lookup of a backend (part of :class:`~clusterjob.backends.ClusterjobBackend`)."""

    _interface_part: ClassVar[bool] = True

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """A command listing the jobs that carry ``tag``, or None if the backend cannot look one up.

        ``remote`` is the host the command runs on (None: this machine).
        ``finished=True`` asks for the second lookup, among jobs that left
        the queue (accounting), after :meth:`parse_tag_lookup` of the first
        said it does not cover them.

        Backends written against the earlier names, ``cmd_find_tag(tag, *,
        remote=None)`` (or ``cmd_find_tag(tag)``) and
        ``get_job_ids_for_tag(stdout, tag)``, keep working: this calls their
        ``cmd_find_tag`` (with ``remote`` only where it is accepted).
        """
        find_tag = getattr(self, "cmd_find_tag", None)
        if find_tag is None or finished:
            return None
        if accepts_keyword(find_tag, "remote"):
            return find_tag(tag, remote=remote)
        return find_tag(tag)

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str] | None:
        """Job IDs carrying ``tag``, from the whole result of :meth:`tag_lookup_command`.

        Return ``[]`` only when the result proves that no job carries the tag
        (clusterjob then submits); None when this lookup does not cover the
        jobs that left the queue (clusterjob then asks again with
        ``finished=True``); raise :class:`~clusterjob.errors.SubmitError` when
        the result cannot prove it (a failed command: the user must check by
        hand).

        For a backend with the earlier ``get_job_ids_for_tag(stdout, tag)``,
        this is that method.
        """
        get_ids = getattr(self, "get_job_ids_for_tag", None)
        if get_ids is None:
            raise NotImplementedError(
                f"backend {self.name!r} cannot look up jobs by tag: implement "
                "tag_lookup_command and parse_tag_lookup"
            )
        return list(get_ids(result.stdout, tag))

    def tag_lookup_methods(
        self,
    ) -> tuple[
        Callable[[str, str | None, bool], Command | None],
        Callable[[CommandResult, str, bool], list[str] | None],
    ]:
        """The (command, parser) pair clusterjob looks up tags with.

        :meth:`tag_lookup_command` and :meth:`parse_tag_lookup`, or for each,
        the base class's adapter over its earlier name (``cmd_find_tag``,
        ``get_job_ids_for_tag``) where a subclass defines that name nearer:
        so a subclass overriding the earlier name of a backend that has the
        new one has its override used.
        """
        command = self.tag_lookup_command
        if self._depth("cmd_find_tag") < self._depth("tag_lookup_command"):
            command = functools.partial(TagLookup.tag_lookup_command, self)
        parse = self.parse_tag_lookup
        if self._depth("get_job_ids_for_tag") < self._depth("parse_tag_lookup"):
            parse = functools.partial(TagLookup.parse_tag_lookup, self)
        return command, parse
