"""The rendering toolkit every backend shares: quoting, merging, walltimes, memory, the submission context."""

from __future__ import annotations

import re

import pytest
from clusterjob.backends import ClusterjobBackend, ResourcesNotSupportedError, format_option
from clusterjob.rendering import (
    PLAIN_VALUE,
    SubmissionContext,
    megabytes,
    merged_value,
    positive_int,
    quote_value,
)
from clusterjob.walltime import WALLTIME_FORMATS, Walltime, time_to_minutes


@pytest.mark.parametrize(
    ("value", "written"),
    [("plain", "plain"), ("", ""), (42, "42"), ("my job", '"my job"'), ("it's", '"it\'s"'),
     ('say "hi"', '"say \\"hi\\""'), ("a\\b", '"a\\\\b"')],
)  # fmt: skip
def test_quote_value_by_default_quotes_blanks_quotes_and_backslashes_with_escapes(
    value: object, written: str
) -> None:
    assert quote_value(value) == written


def test_quote_value_with_a_schedulers_own_plain_pattern_and_without_escapes() -> None:
    pbs_plain = re.compile(r"[A-Za-z0-9_.,:=/@%+\-\[\]]+")
    assert quote_value("select[x]", pbs_plain) == "select[x]"
    assert quote_value("a b", pbs_plain) == '"a b"'
    assert quote_value("span[ptile=4]", pbs_plain, force=True) == '"span[ptile=4]"'
    assert quote_value("two words", re.compile(r"\S+"), escapes=False) == '"two words"'
    assert quote_value("", re.compile(r"\S+"), escapes=False) == '""'
    with pytest.raises(ValueError, match="a value with blanks and double quotes cannot be quoted"):
        quote_value('say "hi"', re.compile(r"\S+"), escapes=False)


@pytest.mark.parametrize("value", ["a\nb", "a\rb"])
def test_quote_value_refuses_a_line_break(value: str) -> None:
    with pytest.raises(ValueError, match="a line break cannot stand"):
        quote_value(value, PLAIN_VALUE)


def test_merged_value_keeps_the_users_value_first_and_unchanged_without_additions() -> None:
    assert merged_value("project-x", ["cj-1"], " ") == "project-x cj-1"
    assert merged_value("11,12", ["13", "14"], ",") == "11,12,13,14"
    assert merged_value("project-x", [], " ") == "project-x"
    assert merged_value(True, [], " ") is True
    for nothing in (None, False, True, ""):
        assert merged_value(nothing, ["cj-1"], " ") == "cj-1"
    assert merged_value(1, ["cj-1"], " ") == "1 cj-1"  # 1 == True, yet it is a value


@pytest.mark.parametrize(
    ("given", "hms", "minutes", "slurm"),
    [("10", "00:10:00", 10, "10"), (90, "01:30:00", 90, "90"), ("10:30", "00:10:30", 11, "10:30"),
     ("1-1:10:30", "25:10:30", 1511, "1-1:10:30"), ("1:01:10:30", "25:10:30", 1511, "1-01:10:30"),
     (" 2-12 ", "60:00:00", 3600, "2-12")],
)  # fmt: skip
def test_walltime_in_each_schedulers_notation(
    given: object, hms: str, minutes: int, slurm: str
) -> None:
    walltime = Walltime.read("x", given)
    assert (walltime.hours_minutes_seconds(), walltime.minutes(), walltime.days_with_dash()) == (
        hms,
        minutes,
        slurm,
    )


@pytest.mark.parametrize("value", ["1 hour", "", "1.5", None, True])
def test_an_invalid_walltime_names_backend_value_and_formats(value: object) -> None:
    with pytest.raises(ResourcesNotSupportedError) as err:
        Walltime.read("pbs", value)
    assert (
        str(err.value)
        == f"backend 'pbs' cannot express resource time={value!r}: a walltime is {WALLTIME_FORMATS}"
    )


def test_time_to_minutes_rounds_up_and_keeps_its_documented_error() -> None:
    assert time_to_minutes("10:01") == 11
    with pytest.raises(ValueError, match="'x' has invalid pattern"):
        time_to_minutes("x")


def test_counts_and_memory_name_the_key() -> None:
    assert positive_int("lsf", "nodes", "2") == 2 and megabytes("lsf", " 512 ") == 512
    with pytest.raises(
        ResourcesNotSupportedError,
        match=r"^backend 'lsf' cannot express resource nodes=True: nodes",
    ):
        positive_int("lsf", "nodes", True)
    with pytest.raises(ResourcesNotSupportedError) as err:
        megabytes("lsf", "2GB")
    assert str(err.value) == (
        "backend 'lsf' cannot express resource mem='2GB': mem is the memory per node in MB, a positive integer"
    )


def test_the_submission_context_is_empty_by_default_and_immutable() -> None:
    context = SubmissionContext()
    assert (context.tag, context.after) == (None, ())
    with pytest.raises(AttributeError):
        context.tag = "cj-x"  # type: ignore[misc]


class Generic(ClusterjobBackend):
    """The base class's own rendering, with SLURM-like spellings for two options."""

    name = "generic"
    prefix = "#GEN"
    resource_replacements = {"jobname": "job-name", "queue": "partition"}
    option_aliases = {"-p": "--partition"}


@pytest.mark.parametrize("given", [{"queue": "debug"}, {"partition": "debug"}, {"-p": "debug"}])
def test_with_defaults_adds_only_what_no_resource_sets_under_any_spelling(
    given: dict[str, str],
) -> None:
    assert Generic().with_defaults(given, {"queue": "batch"}) == given
    assert Generic().with_defaults({}, {"queue": "batch"}) == {"queue": "batch"}


def test_key_setting_finds_the_users_spelling_of_an_option() -> None:
    backend = Generic()
    assert backend.key_setting({"-p": "x", "jobname": "j"}, "--partition") == "-p"
    assert backend.key_setting({"queue": "x"}, "--partition") == "queue"
    assert backend.key_setting({"queue": None}, "--partition") is None


def test_the_base_class_quotes_values_and_refuses_dependencies_it_cannot_write() -> None:
    assert Generic().format_resource("comment", "my project") == ['--comment="my project"']
    assert format_option("comment", "my project") == [
        "--comment=my project"
    ]  # the bare rule does not quote
    with pytest.raises(ResourcesNotSupportedError) as err:
        Generic().render_headers({}, SubmissionContext(after=("1",)), None)  # type: ignore[arg-type]
    assert str(err.value) == "backend 'generic' cannot express job dependencies (after=...)"
    with pytest.raises(ResourcesNotSupportedError) as err:
        Generic().quote("comment", "a\nb")
    assert (
        str(err.value)
        == "backend 'generic' cannot express resource comment='a\\nb': a line break cannot stand in a '#GEN' header line"
    )
