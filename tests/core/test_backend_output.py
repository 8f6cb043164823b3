"""clusterjob.backends.output: terminal escapes removed, and the one job ID line found."""

from __future__ import annotations

import logging
import re

import pytest
from clusterjob.backends.output import clean_output, find_job_id, output_lines


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("\x1b[1;33mWelcome\x1b[0m\n", "Welcome\n"),  # SGR colours (CSI)
        ("\x1b[2K\x1b[1Gdone\n", "done\n"),  # erase line, cursor to column 1 (CSI)
        ("\x9b31mred\x9b0m\n", "red\n"),  # 8-bit CSI
        ("\x1b]0;user@login1: ~\x07123\n", "123\n"),  # window title ended by BEL (OSC)
        ("\x1b]2;title\x1b\\123\n", "123\n"),  # ... ended by ST
        (
            "\x1b]0;never ended\n123\n",
            "\n123\n",
        ),  # an unterminated title ends with its line, not later
        ("\x1b(B\x1b[mplain\n", "plain\n"),  # character set designation (tput sgr0)
        ("a\x07b\x08c\x1b\n", "abc\n"),  # stray BEL, backspace, lone ESC
        ("\x1b7saved\x1b8\n", "saved\n"),  # two-byte escapes (save/restore cursor)
        ("one\r\ntwo\rthree\n", "one\ntwo\nthree\n"),  # \r\n and a lone \r end lines
        (
            "Job Id:\t23\n\tjob_state = C\n",
            "Job Id:\t23\n\tjob_state = C\n",
        ),  # tabs stay (qstat layouts)
    ],
)
def test_clean_output(text: str, clean: str) -> None:
    assert clean_output(text) == clean


def test_output_lines_are_stripped_and_not_blank() -> None:
    assert output_lines("\r\n  \x1b[0m\r\n  Submitted batch job 5  \r\n\n") == [
        "Submitted batch job 5"
    ]


SUBMITTED = re.compile(r"Submitted batch job (\d+)")
BARE = re.compile(r"\d+")


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        ("Welcome to cluster X (2 nodes)\n\nSubmitted batch job 5\n", "5"),  # the group is the ID
        ("Last login: Mon Jun  3 09:12:44 2024\n42\n", "42"),  # no group: the whole line
        ("2024\nSubmitted batch job 5\n", "5"),  # the first form that matches decides
        ("Submitted batch job 5\nSubmitted batch job 5\n", "5"),  # one ID twice is one ID
        ("Submitted batch job 5 and more\n", None),  # a form matches a whole line only
        ("Welcome to cluster X (2 nodes)\n", None),
        ("", None),
    ],
)
def test_find_job_id(response: str, job_id: str | None) -> None:
    assert find_job_id(response, SUBMITTED, BARE) == job_id


def test_two_ids_are_no_answer_and_say_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        assert (
            find_job_id("Submitted batch job 5\nSubmitted batch job 6\n", SUBMITTED, BARE) is None
        )
    assert "several job IDs (5, 6)" in caplog.text
    assert "does not say which one is the job just submitted" in caplog.text
