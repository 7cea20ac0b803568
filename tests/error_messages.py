"""The whole line each case of the bad-input catalogue prints, kept for the errors page.

`docs/reference/errors.md` shows, per case, the message the command really prints (what went wrong
and what to do), read from ``docs/reference/error_messages.json``. Every catalogue run checks the
line it got against that file, so the page cannot show a message the code no longer prints. After
changing a message, record them again:

    AL_RECORD_ERRORS=1 python -m pytest tests/test_bad_inputs*.py && python docs/gen_reference.py
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
from pathlib import Path

import pytest

RECORDED = Path(__file__).resolve().parents[1] / "docs" / "reference" / "error_messages.json"
RECORDING = os.environ.get("AL_RECORD_ERRORS") == "1"
_recorded_now: dict[str, set[str]] = {}


def normalized(line: str) -> str:
    """``line`` without the parts that differ between runs: the working directory (paths become
    relative to it), pytest's temporary folders (shown as …/) and a test server's port."""
    cwd = str(Path.cwd())
    line = line.replace(cwd + os.sep, "").replace(cwd, ".")
    line = re.sub(r"(https?://127\.0\.0\.1):\d+", r"\1:PORT", line)
    return re.sub(r"/[^\s'\"]*/pytest-\d+/", "…/", line)


def _without_details(line: str) -> str:
    """``line`` with every innermost parenthesis shown as (…): what a library or the OS says there
    (an exception's text, an errno) may change with its version without the message changing."""
    return re.sub(r"\([^()]*\)", "(…)", line)


def _current_test() -> str:
    """``file::function`` of the running test (no parameters)."""
    node = os.environ["PYTEST_CURRENT_TEST"].split(" ")[0]
    path, _, name = node.partition("::")
    return f"{Path(path).name}::{name.split('[')[0]}"


@functools.cache
def _known() -> dict[str, set[str]]:
    """The recorded lines of every test, without their details (read once per session)."""
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    return {test: {_without_details(line) for line in lines} for test, lines in recorded.items()}


def check_message(line: str) -> None:
    """Record ``line`` (AL_RECORD_ERRORS=1), or fail when the errors page's file does not hold it."""
    test, message = _current_test(), normalized(line)
    if RECORDING:
        _recorded_now.setdefault(test, set()).add(message)
        return
    if _without_details(message) not in _known().get(test, set()):
        pytest.fail(f"{test} printed a message the errors page does not know: {message!r}; record them again "
                    "(AL_RECORD_ERRORS=1 python -m pytest tests/test_bad_inputs*.py, then python docs/gen_reference.py)")


@atexit.register
def _write() -> None:
    if not (RECORDING and _recorded_now):
        return
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    recorded.update({test: sorted(messages) for test, messages in _recorded_now.items()})
    RECORDED.write_text(json.dumps(dict(sorted(recorded.items())), indent=1, ensure_ascii=False) + "\n")
