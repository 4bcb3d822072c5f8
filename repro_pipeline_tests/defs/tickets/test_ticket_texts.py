"""What a ticket asks for and what it is told, without a server: the bug query's block, and the ready
comment with what the query found."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from repro_pipeline.defs.tickets import comments
from repro_pipeline.defs.tickets.github_api import Ticket
from repro_pipeline.defs.tickets.ticket_request import ticket_request

EXPIRES = datetime(2026, 12, 8, 4, 30, tzinfo=UTC)


def _ticket(body: str, labels: tuple[str, ...] = ("needs-repro-db", "org:451")) -> Ticket:
    return Ticket(
        7, "https://github.example/acme/support/issues/7", "oncall-amy", "Totals", body, labels, "t1"
    )


@pytest.mark.parametrize(
    "body",
    [
        "repro_query:\n```sql\nSELECT 1 FROM invoices\n```\n",
        "Steps...\n\nRepro_Query:  \n\n~~~\nSELECT 1 FROM invoices\n~~~",
        "repro_query:\r\n```\r\nSELECT 1 FROM invoices\r\n```\r\n",
        "repro_query:\n````sql\nSELECT 1 FROM invoices\n````\nand a trace:\n```\nTraceback ...\n```",
        "Steps:\nrepro_query:\n```sql\nSELECT 1 FROM invoices\n`````\n",
        "- org 451\n- repro_query:\n  ```sql\n  SELECT 1 FROM invoices\n  ```\n",
    ],
    ids=[
        "sql-fence",
        "tilde-fence-any-case",
        "crlf",
        "other-blocks-ignored",
        "longer-closing-fence",
        "list-item",
    ],
)
def test_the_bug_query_is_the_fenced_block_after_its_line(body: str) -> None:
    request = ticket_request(_ticket(body))
    assert (request.organization_id, request.refusal) == (451, "")
    assert request.repro_query == "SELECT 1 FROM invoices"


def test_a_line_inside_a_code_block_is_no_bug_query() -> None:
    request = ticket_request(_ticket("The log:\n```\nrepro_query:\n```\n```sql\nSELECT 1\n```"))
    assert (request.organization_id, request.repro_query, request.refusal) == (451, "", "")


def test_a_sql_block_without_the_line_is_no_bug_query() -> None:
    request = ticket_request(_ticket("The failing query:\n```sql\nSELECT 1\n```"))
    assert (request.organization_id, request.repro_query) == (451, "")


@pytest.mark.parametrize(
    "body",
    [
        "repro_query:\nSELECT 1",
        "repro_query:\n\nSELECT 1",
        "repro_query:\n\n    SELECT 1",
        "repro_query:",
        "repro_query:\nit is below\n```sql\nSELECT 1\n```",
    ],
    ids=["same-paragraph", "next-paragraph", "indented-code", "nothing-after", "text-between"],
)
def test_a_query_outside_a_fenced_block_is_refused_saying_where_it_goes(body: str) -> None:
    request = ticket_request(_ticket(body))
    assert request.organization_id is None
    assert request.refusal == (
        "the line `repro_query:` is not followed by a fenced code block: put the query in a fenced ```sql "
        "block right after a line `repro_query:`"
    )


def test_a_query_on_the_line_itself_is_refused_saying_where_it_goes() -> None:
    request = ticket_request(_ticket("repro_query: SELECT 1"))
    assert request.organization_id is None
    assert request.refusal == (
        "the query is on the line `repro_query:` itself: put the query in a fenced ```sql block right after "
        "a line `repro_query:`"
    )


def test_an_organization_line_with_crlf_line_ends_is_read() -> None:
    assert ticket_request(_ticket("Hi\r\norganization_id: 452\r\n", labels=())).organization_id == 452


def test_a_changed_query_is_something_else_asked() -> None:
    first = ticket_request(_ticket("repro_query:\n```sql\nDELETE FROM invoices\n```"))
    fixed = ticket_request(_ticket("repro_query:\n```sql\nSELECT 1\n```"))
    assert first.refusal and not fixed.refusal
    assert first.asked != fixed.asked and first.asked[0] == fixed.asked[0] == "label 451"


def test_the_ready_comment_tells_what_the_bug_query_found() -> None:
    found = "the query returns 12 rows: the bug reproduces"
    text = comments.ready(451, "repro_org451_0a1b2c3d", "/srv/secrets/x.dsn", EXPIRES, "", repro_query=found)
    assert text.endswith(f"\n\nBug query: {found}.")
    assert "Bug query" not in comments.ready(451, "repro_org451_0a1b2c3d", "/srv/secrets/x.dsn", EXPIRES, "")
