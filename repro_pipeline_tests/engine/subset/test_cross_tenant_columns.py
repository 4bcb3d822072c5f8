"""Which columns of a reference leading out of the tenant are written as NULL (``cross_tenant_references:
"null"``): one NULL column is enough for a MATCH SIMPLE key, and a tenant column other references share stays."""

from __future__ import annotations

import pytest

from repro_pipeline.engine.source.catalog import Catalog, Column, ForeignKey, Table, TableName
from repro_pipeline.engine.subset.tenant import columns_to_null

BOOKINGS, MEMBERS, WORKSPACES = (
    TableName("app", "bookings"),
    TableName("app", "members"),
    TableName("app", "workspaces"),
)


def _catalog(workspace_not_null: bool, member_not_null: bool) -> tuple[Catalog, ForeignKey]:
    def column(name: str, not_null: bool) -> Column:
        return Column(name, "bigint", not_null, None, "", "")

    bookings = Table(
        BOOKINGS,
        (
            column("id", True),
            column("workspace_id", workspace_not_null),
            column("member_id", member_not_null),
        ),
        ("id",),
    )
    to_member = ForeignKey(
        "to_member", BOOKINGS, ("workspace_id", "member_id"), MEMBERS, ("workspace_id", "id"), ""
    )
    to_workspace = ForeignKey("to_workspace", BOOKINGS, ("workspace_id",), WORKSPACES, ("id",), "")
    return Catalog({BOOKINGS: bookings}, (to_member, to_workspace), ()), to_member


@pytest.mark.parametrize(
    ("workspace_not_null", "member_not_null", "nulled"),
    [
        (True, False, ("member_id",)),
        (False, False, ("member_id",)),  # the tenant column another reference uses stays
        (False, True, ("workspace_id",)),
        (True, True, ()),  # nothing can be NULL: the plan refuses
    ],
)
def test_the_columns_written_as_null_leave_the_tenant_column_alone(
    workspace_not_null: bool, member_not_null: bool, nulled: tuple[str, ...]
) -> None:
    catalog, to_member = _catalog(workspace_not_null, member_not_null)
    assert columns_to_null(catalog, to_member) == nulled
