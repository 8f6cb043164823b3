"""Command line utilities: ``clusterjob backends|status|wait|cancel``.

``status``/``wait``/``cancel`` take cache files (``<cache_folder>/*.cache``),
so a workflow started in a notebook can be inspected from a shell.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from clusterjob.async_result import AsyncResult
from clusterjob.errors import ClusterjobError
from clusterjob.plugins import PluginRegistry, disable_setting, get_registry
from clusterjob.polling import poll, wait_all
from clusterjob.status import str_status

__all__ = ["main"]


def _load(paths: Sequence[str]) -> list[AsyncResult]:
    return [AsyncResult.from_cache(path) for path in paths]


def _print_table(results: Sequence[AsyncResult]) -> None:
    for result in results:
        backend = result.backend.name if result.backend else "?"
        print(
            f"{result.job_id}\t{backend}\t{str_status[result._status]}\t{result.jobname}\t{result.cache_file}"
        )


def _backends_report(registry: PluginRegistry) -> dict[str, list[dict[str, Any]]]:
    """What ``clusterjob backends --json`` prints: backends, failed plugins, disabled plugins."""
    backends = []
    for name in sorted(registry.backends):
        origin = registry.origin_of(name)
        backends.append(
            {
                "name": name,
                "plugin": registry.providers[name],
                "distribution": origin.distribution,
                "version": origin.version,
                "commands": list(registry.backends[name].commands),
            }
        )
    failures = [
        {
            "plugin": failure.plugin,
            "distribution": failure.origin.distribution,
            "version": failure.origin.version,
            "reason": failure.reason,
            "backends": list(failure.backends),
        }
        for failure in registry.failures
    ]
    disabled = [
        {"plugin": plugin, "distribution": origin.distribution, "version": origin.version}
        for plugin, origin in registry.disabled.items()
    ]
    return {"backends": backends, "failures": failures, "disabled": disabled}


def _print_columns(rows: Sequence[Sequence[str]]) -> None:
    """Rows as left-aligned columns, the first row as a header underlined with dashes."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [rows[0], ["-" * width for width in widths], *rows[1:]]
    for row in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _print_backends(report: dict[str, list[dict[str, Any]]]) -> None:
    header = ["backend", "distribution", "version", "scheduler commands"]
    rows = [
        [b["name"], b["distribution"] or "-", b["version"] or "-", ", ".join(b["commands"]) or "-"]
        for b in report["backends"]
    ]
    _print_columns([header, *rows])
    if report["failures"]:
        print(
            f"\nplugins that failed to load and were skipped ({len(report['failures'])}; the backends above work):"
        )
        for failure in report["failures"]:
            origin = (
                " ".join(filter(None, (failure["distribution"], failure["version"])))
                or "no distribution"
            )
            print(f"  {failure['plugin']} ({origin}): {failure['reason']}")
        entry_points = [f["plugin"] for f in report["failures"] if f["distribution"] is not None]
        if entry_points:
            print(f"to stop loading them, set {disable_setting(*entry_points)}")
    if report["disabled"]:
        names = ", ".join(f"{d['plugin']} ({d['distribution']})" for d in report["disabled"])
        print(f"\ndisabled by CLUSTERJOB_DISABLE_PLUGINS: {names}")


def cmd_backends(args: argparse.Namespace) -> int:
    """List the backends and the plugins that failed; exit 1 when any failed."""
    registry = get_registry(
        announce=False
    )  # the failures are listed here, not warned about as well
    report = _backends_report(registry)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_backends(report)
    return 1 if registry.failures else 0


def cmd_status(args: argparse.Namespace) -> int:
    results = _load(args.cache_files)
    poll(results)
    _print_table(results)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    results = _load(args.cache_files)
    statuses = wait_all(results, timeout=args.timeout)
    _print_table(results)
    return 0 if all(s == 0 for s in statuses) else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    for result in _load(args.cache_files):
        result.cancel()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clusterjob", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    backends = sub.add_parser(
        "backends",
        help="list installed backends and plugins that failed to load; exit 1 if any failed",
    )
    backends.add_argument(
        "--json", action="store_true", help="print one JSON object (backends, failures, disabled)"
    )
    backends.set_defaults(func=cmd_backends)
    for name, func, helptext in (
        ("status", cmd_status, "poll and print the status of cached jobs"),
        ("wait", cmd_wait, "wait for cached jobs; exit 1 unless all COMPLETED"),
        ("cancel", cmd_cancel, "cancel cached jobs"),
    ):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("cache_files", nargs="+", metavar="CACHE_FILE")
        if name == "wait":
            command.add_argument("--timeout", type=float, default=None)
        command.set_defaults(func=func)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ClusterjobError as exc:
        print(f"clusterjob: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
