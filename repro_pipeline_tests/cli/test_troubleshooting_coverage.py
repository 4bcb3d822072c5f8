"""docs/troubleshooting.md has an entry for every error message the code can raise or the CLI can print."""

from __future__ import annotations

from pathlib import Path

from repro_pipeline_tests.cli.user_messages import UserMessage, signature, user_messages
from repro_pipeline_tests.conftest import PROJECT_ROOT

TROUBLESHOOTING = PROJECT_ROOT / "docs" / "troubleshooting.md"

# Messages made from another message, by their expression: the entry text that covers them ("" when the
# message it passes on is listed where that one is raised).
PASSED_ON = {
    "f'error: {error}'": "",  # a ReproError or StackError, listed where it is raised
    "f'error: {problem}:'": "",  # report_failure's problem, listed at each call
    "f'error: {type(error).__name__}: {error}'": "error: NAME: MESSAGE",
    "error.problem": "",  # a ReproError of pg_binaries, raised again as a StackError
    "self._failure(command, server, log_file, outcome)": "exited with status N",
    "self._failure(command, server, log_file, f'timed out after {timeout:g}s')": "timed out after",
    "self._failure(command, server, log_file, f'could not run: {error}')": "could not run",
    "redact(message, stack.password)": "waited N s for it",
    "f'{where}: {problem}'": "FILE:LINE:COL: ...",  # the YAML parser's problem
}


def _normalized(text: str) -> str:
    return " ".join(text.replace("\\`", "`").split())


def undocumented(messages: list[UserMessage], document: str) -> list[str]:
    """Each message without an entry in ``document``, as ``path:line: its signature or expression``."""
    text = _normalized(document)
    missing = []
    for message in messages:
        quote = message.signature or PASSED_ON.get(message.code)
        if quote is None:
            missing.append(f"{message.where}: {message.code} (no literal text: add it to PASSED_ON)")
        elif quote and _normalized(quote) not in text:
            missing.append(f"{message.where}: {quote}")
    return missing


def test_every_user_message_has_a_troubleshooting_entry() -> None:
    messages = list(user_messages())
    assert len(messages) > 150  # the walk found the raise sites
    assert undocumented(messages, TROUBLESHOOTING.read_text(encoding="utf-8")) == []


def test_every_passed_on_expression_is_still_in_the_code() -> None:
    assert set(PASSED_ON) <= {message.code for message in user_messages()}


def test_the_new_cli_messages_are_among_those_collected() -> None:
    signatures = {message.signature for message in user_messages()}
    assert {"the embedded stack is not set up, and", "the TTL sweep failed (run", "the run"} <= signatures


def test_a_message_without_an_entry_is_found(tmp_path: Path) -> None:
    package = tmp_path / "repro_pipeline"
    package.mkdir()
    (package / "broken.py").write_text(
        "class ReproError(Exception): ...\n"
        "class OddError(ReproError): ...\n"
        "def check(x):\n"
        "    raise OddError(f'the frobnicator {x} is upside down', 'turn it over')\n"
        "def say(x):\n"
        "    print(f'error: the widget {x} melted', file=sys.stderr)\n"
    )
    messages = list(user_messages(package))
    assert [message.signature for message in messages] == ["the frobnicator", "the widget"]
    assert undocumented(messages, "`the frobnicator X is upside down`") == [
        "repro_pipeline/broken.py:6: the widget"
    ]


def test_the_signature_is_the_longest_literal_text() -> None:
    assert signature(["the target database ", " is not empty (", " tables)"]) == "the target database"
    assert signature([": ", ""]) == ""
