"""clusterjob plugin for the MySite cluster: the ``mysite`` backend.

MySite runs SLURM with rules of its own: a job runs in the ``batch`` partition
unless it names another, every job names the account its time is charged to,
and GPUs are asked for as ``gpus=2`` (SLURM's generic resource ``gpu:2``).
Everything else is SLURM's own rendering, inherited: quoting, walltimes, the
crash-recovery tag and the dependencies of ``submit(after=...)``.
"""

from __future__ import annotations

from typing import Any

from clusterjob import hookimpl
from clusterjob.backends import ClusterjobBackend, SubmissionContext
from clusterjob.errors import ResourcesNotSupportedError
from clusterjob.rendering import merged_value, positive_int
from clusterjob_slurm import SlurmBackend

__all__ = ["MySiteBackend", "clusterjob_backends"]


class MySiteBackend(SlurmBackend):
    """SLURM as MySite runs it: partition ``batch`` by default, an account required, ``gpus``."""

    name = "mysite"

    def prepare_resources(
        self, resources: dict[str, Any], context: SubmissionContext
    ) -> dict[str, Any]:
        """The job's resources with MySite's rules applied; SLURM's rendering writes them."""
        resources = self.with_defaults(resources, {"queue": "batch"})
        account = self.key_setting(resources, "--account")  # account, A, -A or --account
        if account is None or not str(resources[account]).strip():
            raise ResourcesNotSupportedError(
                f"backend {self.name!r} needs resource 'account', the project the job is charged "
                "to: set JobScript(..., account='myproject') or 'account = myproject' in the "
                "[Resources] section of the INI file"
            )
        gpus = resources.pop("gpus", None)
        if gpus is not None and gpus is not False:
            count = positive_int(self.name, "gpus", gpus)
            gres = self.key_setting(resources, "--gres") or "gres"  # keep the job's own gres
            resources[gres] = merged_value(resources.get(gres), [f"gpu:{count}"], ",")
        return super().prepare_resources(resources, context)


@hookimpl
def clusterjob_backends() -> list[ClusterjobBackend]:
    """The plugin's one backend, found through the ``clusterjob`` entry point ``mysite``."""
    return [MySiteBackend()]
