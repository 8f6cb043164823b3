"""Which of the interface's methods a backend class defines itself, and with which signature.

The base class serves backends written against three generations of the
interface (the original's single-job methods, the earlier tag-lookup names,
the batch form) by adapting one to the other. To choose, it asks what a
subclass defines: a method inherited from the interface is a default, a
method defined below it is the backend's own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["InterfacePart", "accepts_keyword"]


def accepts_keyword(method: Callable[..., Any], name: str) -> bool:
    """Whether ``method`` can be called with the keyword ``name``: how a backend written
    against an older signature of an interface method is told from a current one.

    Asked once per function and keyword (a signature does not change; reading it
    cost a third of a millisecond on every ``submit()``).
    """
    key = (getattr(method, "__func__", method), name)
    answer = _accepts.get(key)
    if answer is None:
        parameters = inspect.signature(method).parameters.values()
        answer = any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)
        _accepts[key] = answer
    return answer


#: (function, keyword) -> whether it accepts the keyword; see :func:`accepts_keyword`.
_accepts: dict[tuple[Any, str], bool] = {}


class InterfacePart:
    """Base of the classes that make up :class:`~clusterjob.backends.ClusterjobBackend`.

    Each of them sets :attr:`_interface_part` in its own body, so that its
    definitions count as the interface's defaults, not as a backend's own.
    """

    _interface_part: ClassVar[bool] = True
    #: Set by ClusterjobBackend: the backend's name, for messages.
    name: str

    @classmethod
    def _depth(cls, *names: str) -> int:
        """How far up the MRO a backend defines any of ``names`` itself (none: past the end)."""
        for depth, klass in enumerate(cls.__mro__):
            own = vars(klass)
            if not own.get("_interface_part") and any(name in own for name in names):
                return depth
        return len(cls.__mro__)

    @classmethod
    def _overrides(cls, name: str) -> bool:
        """Whether a backend class defines ``name`` itself (not the interface's default)."""
        return cls._depth(name) < len(cls.__mro__)
