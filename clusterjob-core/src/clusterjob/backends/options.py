"""Which scheduler option each resource sets, under any of its spellings.

One option can be set by clusterjob's own key (``queue``), by a key the
documented rule writes (``partition`` -> ``--partition``) or by a key given
with its dashes (``-p``, as INI files for the original clusterjob do). This
part of the backend interface reads dashed keys, refuses two resources that
set one option, and finds the key that sets an option, for defaults
(:meth:`ResourceOptions.with_defaults`) and merges
(:meth:`ResourceOptions.key_setting`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from clusterjob.backends.overrides import InterfacePart
from clusterjob.errors import ResourcesNotSupportedError
from clusterjob.rendering import dashed_key_problem, format_option, is_dashed

__all__ = ["ResourceOptions"]


class ResourceOptions(InterfacePart):
    """Option spellings of a backend (part of :class:`~clusterjob.backends.ClusterjobBackend`)."""

    _interface_part: ClassVar[bool] = True
    # Set by ClusterjobBackend (see its docstring).
    common_keys: ClassVar[list[str]]
    resource_replacements: dict[str, str]
    option_aliases: ClassVar[Mapping[str, str]]

    def read_dashed_keys(self, resources: Mapping[str, Any]) -> dict[str, Any]:
        """``resources`` with the keys given with their dashes (``-A``, ``--qos``) checked and read.

        INI files written for the original clusterjob name scheduler options
        with their dashes; such a key is the option itself. Backends call this
        first in :meth:`resource_headers`:

        1. A dashed key that is no option name (``-``, ``---x``, ``-A B``) is
           refused, naming the key.
        2. A key that sets the same option as another resource (``-N`` and
           ``jobname`` on PBS, ``-t`` and ``time`` on SLURM, ``-l
           walltime=1:00:00`` and ``time``, ``-A`` and ``A``, ``q`` and
           ``queue``) is refused, naming both: the scheduler would silently take
           one of them. Keys the backend translates itself may share one.
        3. A dashed key that the documented rule writes from an undashed key
           the backend does not translate itself becomes that key (``-W`` ->
           ``W``), so that what the backend merges into one option (PBS
           ``-W``, SLURM ``--comment``, SGE ``-hold_jid``) is merged.
        4. Any other dashed key stays; :func:`format_option` writes it as it is.

        A dashed key whose value is None or False (which writes nothing) is left out.
        """
        given = {
            k: v for k, v in resources.items() if not (is_dashed(k) and (v is None or v is False))
        }
        for key, value in given.items():
            problem = dashed_key_problem(key) if is_dashed(key) else None
            if problem:
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express resource {key!r}={value!r}: {problem}"
                )
        self._check_option_conflicts(given)
        read: dict[str, Any] = {}
        for key, value in given.items():
            target = self._undashed_key(key) if is_dashed(key) else key
            if (
                target != key or target not in read
            ):  # a dashed key replaces its twin set to None/False
                read[target] = value
        return read

    def options_set_by(self, key: str, value: Any) -> set[str]:
        """The options resource ``key`` sets, to find two resources that set the same one.

        A ``-l`` resource counts by its name, as ``'-l walltime'``. The
        default: a dashed key sets itself; a key in
        :attr:`resource_replacements` its replacement; another translated key
        nothing; any other key :meth:`generic_option`. Spellings are made one
        through :attr:`option_aliases`. Backends override this for the keys
        they write differently.
        """
        if is_dashed(key):
            option: str | None = key
        elif key in self.resource_replacements:
            option = format_option(self.resource_replacements[key], True)[0]
        elif key in self.translated_keys():
            option = None
        else:
            option = self.generic_option(key)
        return {self.option_aliases.get(option, option)} if option else set()

    def generic_option(self, key: str) -> str | None:
        """The option the documented rule writes for an undashed ``key`` the backend leaves to it.

        None where the rule writes no option of that name (PBS writes a long
        key as the ``-l`` resource ``key=value``).
        """
        return f"-{key}" if len(key) == 1 else f"--{key}"

    def translated_keys(self) -> frozenset[str]:
        """Keys the backend translates itself (common and its own): never read from a dashed key."""
        return frozenset({*self.common_keys, "jobname", *self.resource_replacements})

    def key_setting(self, resources: Mapping[str, Any], option: str) -> str | None:
        """The key of ``resources`` that sets ``option`` (``-d``, ``dependency``: ``--dependency``).

        For merging what clusterjob adds with the option as the user gave it
        (:func:`~clusterjob.rendering.merged_value`), under whichever key.
        """
        for key, value in resources.items():
            if (
                value is not None
                and value is not False
                and option in self.options_set_by(key, value)
            ):
                return key
        return None

    def with_defaults(
        self, resources: Mapping[str, Any], defaults: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``resources`` plus each of ``defaults`` the job does not set itself, under any spelling.

        For :meth:`prepare_resources`: on SLURM, ``{"queue": "batch"}`` is
        added unless the job has a ``queue`` resource or sets the partition
        another way (``partition``, ``-p``, ``--partition``; see
        :meth:`options_set_by`).
        """
        merged = dict(resources)
        for key, value in defaults.items():
            if key not in merged and not any(
                self.key_setting(merged, option) for option in self.options_set_by(key, value)
            ):
                merged[key] = value
        return merged

    def _check_option_conflicts(self, resources: Mapping[str, Any]) -> None:
        """Refuse two resources that set one option (:meth:`read_dashed_keys`).

        Keys the backend translates itself may share an option (PBS writes
        ``nodes`` and ``ppn`` into one ``-l nodes``); any other key may not.
        The key refused is the dashed one, else the one the documented rule
        writes (``q`` beside ``queue``, ``partition`` beside ``queue`` on SLURM);
        the key kept, where there is one, is clusterjob's own.
        """
        setters: dict[str, list[str]] = {}
        for key, value in resources.items():
            if value is not None and value is not False:
                for option in self.options_set_by(key, value):
                    setters.setdefault(option, []).append(key)
        own = self.translated_keys()
        for option, keys in setters.items():
            if len(keys) > 1 and not own.issuperset(keys):
                key = min(keys, key=lambda k: (not is_dashed(k), k in own))
                rest = [k for k in keys if k != key]
                other = next((k for k in rest if k in own), rest[0])
                remedy = (
                    f"{other} is clusterjob's own key for it: set {other} instead of {key}"
                    if other in own
                    else "keep one of the two"
                )
                other_text = f"{other!r}" if is_dashed(other) else other
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express resource {key!r}={resources[key]!r}: "
                    f"resource {other_text}={resources[other]!r} already sets {option}; {remedy}"
                )

    def _undashed_key(self, key: str) -> str:
        """The undashed key the documented rule writes as the option ``key``, or ``key`` itself."""
        name = key[2:] if key.startswith("--") else key[1:]
        if name not in self.translated_keys() and self.generic_option(name) == key:
            return name
        return key
