"""Examples from the original clusterjob's documentation, verbatim, for the tests that run them."""

#: The documentation's example of a valid config file (``read_defaults``/``read_settings``):
#: an rsync prologue and epilogue to a remote host, and a new attribute.
DOCUMENTED_INI = """\
[Attributes]
remote = login.cluster.edu
prologue =
    ssh {remote} 'mkdir -p {rootdir}/{workdir}'
    rsync -av {workdir}/ {remote}:{rootdir}/{workdir}
epilogue = rsync -av {remote}:{rootdir}/{workdir}/ {workdir}
rootdir = ~/jobs/
# the following is a new attribute
text = Hello World

[Resources]
queue = exec
nodes = 1
threads = 1
mem = 10
"""

#: The resources of the documentation's ``printenv`` example job (rendered for SLURM there;
#: the other backends' tests render the same request in their own notation).
PRINTENV_RESOURCES = {
    "jobname": "printenv",
    "queue": "test",
    "time": "00:05:00",
    "nodes": 1,
    "threads": 1,
    "mem": 100,
    "stdout": "printenv.out",
    "stderr": "printenv.err",
}
