"""``clusterjob backends``: the installed backends, and the plugins that failed to load."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clusterjob.cli.common import EXIT_COMPLETED, EXIT_FAILED, print_columns
from clusterjob.plugins import PluginRegistry, disable_setting, get_registry

__all__ = ["add_parser"]

EXAMPLE = """\
example:
  $ clusterjob backends
  backend  distribution      version  scheduler commands
  -------  ----------------  -------  ------------------------------
  local    clusterjob-core   3.0.0    python -I -S local_runner.py
  slurm    clusterjob-slurm  3.0.0    sbatch, squeue, sacct, scancel
"""


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


def _print_backends(report: dict[str, list[dict[str, Any]]]) -> None:
    header = ["backend", "distribution", "version", "scheduler commands"]
    rows = [
        [b["name"], b["distribution"] or "-", b["version"] or "-", ", ".join(b["commands"]) or "-"]
        for b in report["backends"]
    ]
    print_columns([header, *rows])
    if report["failures"]:
        print(
            f"\nplugins that failed to load and were skipped ({len(report['failures'])}; "
            "the backends above work):"
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
    registry = get_registry(announce=False)  # the failures are listed here, not warned about
    report = _backends_report(registry)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_backends(report)
    return EXIT_FAILED if registry.failures else EXIT_COMPLETED


def add_parser(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    parser = commands.add_parser(
        "backends",
        help="list installed backends and plugins that failed to load; exit 1 if any failed",
        description="List the installed backends (distribution, version, scheduler commands), "
        "then every plugin that failed to load, with the reason. Exit 1 if a plugin failed.",
        epilog=EXAMPLE,
        formatter_class=formatter,
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (backends, failures, disabled)"
    )
    parser.set_defaults(func=cmd_backends)
