"""JobScript attributes, INI files and rendering, as documented."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.backends import ClusterjobBackend, ResourcesNotSupportedError, format_option
from clusterjob.errors import BackendNotInstalledError, ConfigError
from helpers.documented import DOCUMENTED_INI


class EchoBackend(ClusterjobBackend):
    """A minimal backend for rendering tests: headers by the documented rule."""

    name = "echo"
    extension = "echo"
    prefix = "#ECHO"
    resource_replacements = {"jobname": "job-name", "queue": "partition"}
    job_vars = {"CLUSTERJOB_ID": "ECHO_ID", "CLUSTERJOB_NAME": "ECHO_NAME"}

    def cmd_submit(self, jobscript):  # pragma: no cover - not submitted
        return ["true"]

    def get_job_id(self, response):  # pragma: no cover
        return "1"

    def cmd_status(self, run, finished=False):  # pragma: no cover
        return ["true"]

    def get_status(self, response, finished=False):  # pragma: no cover
        return None

    def cmd_cancel(self, run):  # pragma: no cover
        return ["true"]


@pytest.fixture
def echo() -> EchoBackend:
    backend = EchoBackend()
    JobScript.register_backend(backend)
    JobScript.backend = "echo"
    return backend


def test_documented_defaults() -> None:
    assert JobScript.backend == "slurm"
    assert JobScript.shell == "/bin/bash"
    assert JobScript.remote is None
    assert JobScript.rootdir == "." and JobScript.workdir == "."
    assert JobScript.filename is None
    assert JobScript.prologue == "" and JobScript.epilogue == ""
    assert JobScript.max_sleep_interval == 900
    assert JobScript.ssh == "ssh" and JobScript.scp == "scp"
    assert JobScript.cache_folder is None and JobScript.cache_prefix == "clusterjob"
    assert JobScript.resources == OrderedDict()


def test_local_backend_is_discovered() -> None:
    assert "local" in JobScript.backends


def test_class_and_instance_attributes_documented_example() -> None:
    jobscript = JobScript(body='echo "Hello"', jobname="test")
    jobscript.shell = "/bin/sh"
    assert JobScript.shell == "/bin/bash"
    JobScript.shell = "/bin/sh"
    job1 = JobScript(body='echo "Hello"', jobname="test1")
    job2 = JobScript(body='echo "Hello"', jobname="test2")
    assert job1.shell == job2.shell == "/bin/sh"
    JobScript.shell = "/bin/bash"
    assert job1.shell == job2.shell == "/bin/bash"
    job1.shell = "/bin/sh"
    assert job1.shell == "/bin/sh"
    assert job2.shell == "/bin/bash"


@pytest.mark.parametrize("name", ["cache_folder", "cache_prefix", "resources"])
def test_class_only_attributes_cannot_be_shadowed(name: str) -> None:
    jobscript = JobScript("true", jobname="x")
    with pytest.raises(AttributeError, match=f"'{name}' is a class attribute of JobScript"):
        setattr(jobscript, name, {})
    with pytest.raises(AttributeError, match=f"'{name}' is a class attribute"):
        JobScript("true", jobname="x", **{name: "x"})


def test_kwargs_split_into_attributes_and_resources() -> None:
    jobscript = JobScript(
        "true", jobname="x", backend="local", shell="/bin/sh", queue="q", nodes=2, contiguous=True
    )
    assert jobscript.backend == "local" and jobscript.shell == "/bin/sh"
    assert jobscript.resources == {"jobname": "x", "queue": "q", "nodes": 2, "contiguous": True}
    assert "backend" not in jobscript.resources


def test_class_resources_are_defaults_for_new_instances_only() -> None:
    JobScript.resources["queue"] = "exec"
    first = JobScript("true", jobname="a")
    first.resources["queue"] = "other"
    assert JobScript.resources == {"queue": "exec"}
    assert JobScript("true", jobname="b").resources == {"queue": "exec", "jobname": "b"}


def test_trailing_slashes_are_stripped() -> None:
    JobScript.rootdir = "~/jobs/"
    assert JobScript.rootdir == "~/jobs"
    jobscript = JobScript("true", jobname="x", workdir="run1//")
    assert jobscript.workdir == "run1"
    jobscript.rootdir = "/"
    assert jobscript.rootdir == "/"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "max_sleep_interval",
            "soon",
            "max_sleep_interval must be a positive number of seconds, not 'soon'",
        ),
        ("max_sleep_interval", 0, "max_sleep_interval must be a positive number of seconds, not 0"),
        ("backend", "", "backend must be a non-empty string"),
        ("rootdir", None, "rootdir must be a string, not None"),
        ("remote", 3, "remote must be a string or None, not 3"),
    ],
)
def test_attribute_values_are_checked(name: str, value: object, message: str) -> None:
    jobscript = JobScript("true", jobname="x")
    with pytest.raises(ValueError, match=message):
        setattr(jobscript, name, value)
    with pytest.raises(ValueError, match=message):
        setattr(JobScript, name, value)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="jobname must be a non-empty string"):
        JobScript("true", jobname="")
    with pytest.raises(ValueError, match="body must be a string"):
        JobScript(None, jobname="x")  # type: ignore[arg-type]


def test_backends_is_read_only() -> None:
    with pytest.raises(AttributeError, match="'backends' is read-only"):
        JobScript("true", jobname="x").backends = []  # type: ignore[misc]


def test_render_adds_shebang_headers_and_maps_variables(echo: EchoBackend) -> None:
    body = "\necho $CLUSTERJOB_ID ${CLUSTERJOB_NAME} $CLUSTERJOB_IDX\n"
    jobscript = JobScript(
        body, jobname="render", queue="test", F="nodes.txt", contiguous=True, verbose=False
    )
    assert str(jobscript) == textwrap.dedent(
        """\
        #!/bin/bash
        #ECHO -F nodes.txt
        #ECHO --contiguous
        #ECHO --job-name=render
        #ECHO --partition=test

        echo $ECHO_ID ${ECHO_NAME} $CLUSTERJOB_IDX
        """
    )


def test_existing_shebang_is_kept(echo: EchoBackend) -> None:
    jobscript = JobScript("#!/usr/bin/env python3\nprint('{jobname}')", jobname="py")
    assert str(jobscript) == "#!/usr/bin/env python3\n#ECHO --job-name=py\nprint('py')"


def test_myvar_documented_example(echo: EchoBackend) -> None:
    jobscript = JobScript("\necho {myvar}\n", jobname="myvar_test")
    jobscript.myvar = "Hello"
    assert str(jobscript) == "#!/bin/bash\n#ECHO --job-name=myvar_test\n\necho Hello\n"


def test_placeholder_precedence_resources_over_instance_over_class(echo: EchoBackend) -> None:
    JobScript.value = "class"
    JobScript.only_class = "C"
    jobscript = JobScript("echo {value} {only_class} {only_instance}", jobname="p")
    jobscript.only_instance = "I"
    assert jobscript.render_script(jobscript.body).endswith("echo class C I")
    jobscript.value = "instance"
    assert jobscript.render_script(jobscript.body).endswith("echo instance C I")
    jobscript.resources["value"] = "resource"
    assert jobscript.render_script(jobscript.body).endswith("echo resource C I")


def test_lines_with_shell_braces_keep_them(echo: EchoBackend) -> None:
    body = "echo ${HOME} {jobname}\nawk '{print $1}' {missing}\necho {{literal}} {jobname:>6}"
    rendered = JobScript(body, jobname="b").render_script(body)
    assert rendered.splitlines()[1:] == [
        "echo ${HOME} b",
        "awk '{print $1}' {missing}",
        "echo {literal}      b",
    ]


def test_prologue_is_rendered_without_headers(echo: EchoBackend) -> None:
    jobscript = JobScript("true", jobname="x", remote="login", workdir="w")
    jobscript.prologue = "ssh {remote} 'mkdir -p {rootdir}/{workdir}'"
    assert jobscript.render_script(jobscript.prologue) == "#!/bin/bash\nssh login 'mkdir -p ./w'"


def test_unknown_backend_names_distribution_to_install() -> None:
    jobscript = JobScript("true", jobname="x", backend="slrum")
    with pytest.raises(BackendNotInstalledError) as info:
        str(jobscript)
    assert str(info.value).startswith(
        "backend 'slrum' is not installed: pip install clusterjob-slrum (installed backends: "
    )
    assert "local" in str(info.value)


def test_known_backend_names_its_distribution() -> None:
    from clusterjob.plugins import create_plugin_manager, get_backend, reset_plugin_manager

    reset_plugin_manager(create_plugin_manager(load_entrypoints=False))
    with pytest.raises(
        BackendNotInstalledError,
        match="backend 'pbspro' is not installed: pip install clusterjob-pbs",
    ):
        get_backend("pbspro")


def test_register_backend_errors_and_rename(echo: EchoBackend) -> None:
    with pytest.raises(
        TypeError, match="is not an instance of clusterjob.backends.ClusterjobBackend"
    ):
        JobScript.register_backend(object())  # type: ignore[arg-type]

    class NoExtension(EchoBackend):
        extension = ""

    with pytest.raises(AttributeError, match="must have a non-empty 'extension' attribute"):
        JobScript.register_backend(NoExtension())

    class Incomplete(ClusterjobBackend):
        name = "incomplete"
        extension = "x"

    with pytest.raises(TypeError, match="backend 'incomplete' does not implement cmd_submit"):
        JobScript.register_backend(Incomplete())

    renamed = EchoBackend()
    JobScript.register_backend(renamed, name="echo2")
    assert renamed.name == "echo2"
    assert "echo2" in JobScript.backends


def test_registered_backend_wins_over_discovered() -> None:
    class MyLocal(EchoBackend):
        name = "local"

    mine = MyLocal()
    JobScript.register_backend(mine)
    jobscript = JobScript("true", jobname="x", backend="local")
    assert jobscript._get_backend() is mine


def test_format_option_documented_rule() -> None:
    assert format_option("contiguous", True) == ["--contiguous"]
    assert format_option("dependency", "after:12454") == ["--dependency=after:12454"]
    assert format_option("F", "nodefile.txt") == ["-F", "nodefile.txt"]
    assert format_option("exclusive", False) == [] and format_option("x", None) == []


def test_format_option_takes_a_key_with_its_dashes_as_that_option() -> None:
    assert format_option("-A", "acct") == ["-A", "acct"]
    assert format_option("--qos", "high") == ["--qos=high"]
    assert format_option("-hold_jid", "12") == ["-hold_jid", "12"]
    assert format_option("-j", True) == ["-j"] and format_option("-j", False) == []
    assert format_option("--comment", "a b", quote=lambda text: f'"{text}"') == ['--comment="a b"']
    with pytest.raises(
        ResourcesNotSupportedError, match=r"^cannot express resource '---x'=1: an option given"
    ):
        format_option("---x", 1)


def test_the_default_headers_take_dashed_keys_from_an_ini_file(
    echo: EchoBackend, tmp_path: Path
) -> None:
    """A site backend that keeps the base class's resource_headers gets the same dashed-key rule."""
    path = tmp_path / "job.ini"
    path.write_text("[Resources]\n-A = acct\n--qos = high\n-V = true\n")
    jobscript = JobScript("true", jobname="j")
    jobscript.read_settings(str(path))
    assert echo.resource_headers(jobscript) == [
        "#ECHO -A acct",
        "#ECHO -V",
        "#ECHO --job-name=j",
        "#ECHO --qos=high",
    ]
    path.write_text("[Resources]\n--job-name = other\n")
    jobscript.read_settings(str(path))
    with pytest.raises(
        ResourcesNotSupportedError,
        match="resource '--job-name'='other': resource jobname='j' already",
    ):
        echo.resource_headers(jobscript)


def test_local_backend_rejects_what_it_cannot_do() -> None:
    jobscript = JobScript("true", jobname="x", backend="local", account="physics")
    with pytest.raises(
        ResourcesNotSupportedError, match="does not support resource account='physics'"
    ):
        str(jobscript)
    with pytest.raises(ResourcesNotSupportedError, match="nodes=2 is not supported"):
        str(JobScript("true", jobname="x", backend="local", nodes=2))
    with pytest.raises(
        ResourcesNotSupportedError,
        match="resource time='1 day': a walltime is minutes, minutes:seconds",
    ):
        str(JobScript("true", jobname="x", backend="local", time="1 day"))


# -- INI files -----------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "settings.ini") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_read_defaults_documented_example_and_reset(tmp_path: Path) -> None:
    JobScript.read_defaults(write(tmp_path, DOCUMENTED_INI))
    assert JobScript.remote == "login.cluster.edu"
    assert JobScript.rootdir == "~/jobs"
    assert JobScript.text == "Hello World"  # type: ignore[attr-defined]
    assert JobScript.prologue.strip().splitlines() == [
        "ssh {remote} 'mkdir -p {rootdir}/{workdir}'",
        "rsync -av {workdir}/ {remote}:{rootdir}/{workdir}",
    ]
    assert JobScript.resources == {"queue": "exec", "nodes": 1, "threads": 1, "mem": 10}
    JobScript.read_defaults()
    assert JobScript.remote is None and JobScript.rootdir == "." and JobScript.resources == {}
    assert not hasattr(JobScript, "text")


def test_read_defaults_resets_the_class_as_a_fresh_process_first_changed_it(
    tmp_path: Path,
) -> None:
    """Regression: the pristine copy was the class's own resources dict, so in a fresh
    process (the suite's reset hides it) the first ``read_defaults(file)`` also changed
    what ``read_defaults()`` restores."""
    settings = write(tmp_path, DOCUMENTED_INI)
    code = (
        "import sys; from clusterjob import JobScript\n"
        "JobScript.read_defaults(sys.argv[1]); JobScript.resources['extra'] = 1\n"
        "JobScript.read_defaults(); print(dict(JobScript.resources))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, settings], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "{}"


def test_read_settings_sets_instance_values_only(tmp_path: Path) -> None:
    jobscript = JobScript("true", jobname="x")
    jobscript.read_settings(write(tmp_path, DOCUMENTED_INI))
    assert jobscript.remote == "login.cluster.edu" and JobScript.remote is None
    assert jobscript.resources["queue"] == "exec" and JobScript.resources == {}


def test_keys_are_case_sensitive_and_flags_become_booleans(tmp_path: Path) -> None:
    JobScript.read_defaults(write(tmp_path, "[Resources]\nF = a\nf = b\nexclusive = True\n"))
    assert JobScript.resources == {"F": "a", "f": "b", "exclusive": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Attributes]\nshell = /bin/sh\n[Extra]\nx = 1\n", r"unknown section \[Extra\]"),
        ("[attributes]\nshell = /bin/sh\n", r"unknown section \[attributes\]"),
        ("", "has neither an \\[Attributes\\] nor a \\[Resources\\] section"),
        ("shell = /bin/sh\n", "is not a valid INI file"),
        ("[Attributes]\n1shell = x\n", r"section \[Attributes\], key '1shell': attribute names must start with a letter"),
        ("[Attributes]\nmy-attr = x\n", r"key 'my-attr': attribute names must start with a letter"),
        ("[Attributes]\nbackends = x\n", r"section \[Attributes\], key 'backends': 'backends' is reserved"),
        ("[Resources]\nresources = x\n", r"section \[Resources\], key 'resources': 'resources' is reserved"),
        ("[Resources]\nnodes = two\n", r"section \[Resources\], key 'nodes': nodes = 'two' is not an integer"),
        ("[Attributes]\nshell = /bin/sh\nmax_sleep_interval = soon\n", r"key 'max_sleep_interval': JobScript.max_sleep_interval must be a positive number of seconds"),
        ("[Attributes]\nshell = /bin/sh\n[Resources]\nthreads = 1.5\n", r"key 'threads': threads = '1.5' is not an integer"),
        ("[Attributes]\nsubmit = x\n", r"key 'submit': 'submit' is reserved"),
        ("[Attributes]\nshell = a\nshell = b\n", "option 'shell' in section 'Attributes' already exists"),
    ],
)  # fmt: skip
def test_bad_ini_files_name_file_section_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text, "bad.ini")
    with pytest.raises(ConfigError, match=message) as info:
        JobScript.read_defaults(path)
    assert path in str(info.value)
    assert JobScript.shell == "/bin/bash"  # nothing half-applied before the error


def test_missing_ini_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file '.*missing.ini': No such file"):
        JobScript.read_defaults(str(tmp_path / "missing.ini"))


def test_read_settings_refuses_class_only_attributes(tmp_path: Path) -> None:
    path = write(tmp_path, "[Attributes]\ncache_folder = /tmp/x\n")
    with pytest.raises(
        ConfigError, match=r"key 'cache_folder': 'cache_folder' is a class attribute"
    ):
        JobScript("true", jobname="x").read_settings(path)
    JobScript.read_defaults(path)
    assert JobScript.cache_folder == "/tmp/x"


def test_write_renders_job_and_aux_scripts(tmp_path: Path) -> None:
    jobscript = JobScript(
        "./helper.sh", jobname="w", backend="local", rootdir=str(tmp_path), workdir="run/",
        aux_scripts={"helper.sh": "echo {jobname} helper"},
    )  # fmt: skip
    jobscript.write()
    assert (
        tmp_path / "run" / "w.sh"
    ).read_text() == "#!/bin/bash\n#LOCAL --job-name=w\n./helper.sh"
    assert (tmp_path / "run" / "helper.sh").read_text() == "#!/bin/bash\necho w helper"
    jobscript.write(str(tmp_path / "explicit.sh"))
    assert (tmp_path / "explicit.sh").read_text().startswith("#!/bin/bash\n#LOCAL --job-name=w")


@pytest.mark.parametrize("value", [0, -1, "two", True, 1.5, None])
def test_positive_int_names_backend_key_and_value(value: object) -> None:
    from clusterjob.backends import positive_int

    with pytest.raises(ResourcesNotSupportedError) as info:
        positive_int("mysched", "nodes", value)
    assert (
        str(info.value)
        == f"backend 'mysched' cannot express resource nodes={value!r}: nodes must be a positive integer"
    )
    assert positive_int("mysched", "nodes", " 4 ") == 4
