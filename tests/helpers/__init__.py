"""What the test modules of every distribution share, in one place.

``pyproject.toml`` puts ``tests/`` on ``sys.path`` (pytest's ``pythonpath``): with
``--import-mode=importlib`` a test module cannot import its neighbours or a conftest, but
it can import this package, ``from helpers.commands import FakeCommands``. Fixtures stay in
the conftest files; plain functions and classes live here:

* :mod:`helpers.commands`: stand-in scheduler commands first on ``PATH``, and commands run
  into a :class:`~clusterjob.backends.CommandResult`.
* :mod:`helpers.data`: the captured scheduler output in ``tests/<dist>/data``.
* :mod:`helpers.results`: :class:`~clusterjob.async_result.AsyncResult` objects for a job ID,
  successful command results, and the tag lookup as clusterjob makes it.
* :mod:`helpers.rendering`: the header lines of a job, given as keywords or as an INI file.
* :mod:`helpers.waiting`: polling a condition on a real scheduler with a generous bound.
"""
