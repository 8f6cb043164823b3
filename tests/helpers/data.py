"""The captured scheduler output beside a test module: ``tests/<dist>/data/<what it shows>``."""

from __future__ import annotations

from pathlib import Path


class DataFolder:
    """The ``data`` folder next to the test module ``test_file`` (pass ``__file__``).

    ``DATA / name`` is the path of a fixture file (for a fake command to ``cat``),
    ``DATA.read(name)`` its text.
    """

    def __init__(self, test_file: str) -> None:
        self.path = Path(test_file).parent / "data"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def read(self, name: str) -> str:
        """The text of the fixture file ``name``, exactly as captured."""
        return (self.path / name).read_text()

    def names(self, pattern: str) -> list[str]:
        """The sorted names of the fixture files that match the glob ``pattern``: never none, so
        that a test parametrized over them cannot silently vanish."""
        names = sorted(path.name for path in self.path.glob(pattern))
        if not names:
            raise FileNotFoundError(f"no fixture file in {self.path} matches {pattern!r}")
        return names
