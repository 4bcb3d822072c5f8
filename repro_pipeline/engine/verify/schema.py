"""The repro database's schema against the source's, both as the same pg_dump writes them.

The expected side is what the load applied: the source's dump limited to what the repro gets (an excluded
table or a left-out index is no difference). Both are written out by the same pg_restore, section by
section, so they differ only where the schemas do, and in what never says anything of a schema: comments
(which name the server's version and the dump's time), blank lines, the random keys of a newer pg_dump's
``\\restrict`` lines, and the order of the entries with the session settings between them. pg_dump orders
entries by kind and name, then moves some so that each comes after what it depends on, counting what it was
told to leave out: on Pagila without ``payment``, the view ``sales_by_store``, left out with it, puts
``store`` before ``staff_list`` on the source, after it on the target; and it writes ``SET
default_table_access_method`` (or ``default_tablespace``) once, before the first entry that needs it. So
entries are compared in the order of their names, without those settings.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from repro_pipeline.engine.load.schema_dump import SchemaScripts
from repro_pipeline.engine.load.schema_entries import schema_lines

DIFF_LINES_SHOWN = 200


@dataclass(frozen=True)
class SchemaComparison:
    lines_compared: int  # of the expected side, comments and blank lines left out
    differing_lines: int  # lines only one side has
    diff: str  # unified, its first DIFF_LINES_SHOWN lines; empty when the schemas match


def compare_schemas(expected: SchemaScripts, actual: SchemaScripts) -> SchemaComparison:
    """The differences of ``actual`` (the repro database's) from ``expected`` (the source's, as loaded)."""
    diff: list[str] = []
    compared = differing = 0
    for section, wanted, found in (
        ("pre-data", expected.pre_data, actual.pre_data),
        ("post-data", expected.post_data, actual.post_data),
    ):
        wanted_lines = schema_lines(wanted)
        compared += len(wanted_lines)
        section_diff = list(
            difflib.unified_diff(
                wanted_lines,
                schema_lines(found),
                fromfile=f"source {section} (as loaded)",
                tofile=f"repro database {section}",
                lineterm="",
            )
        )
        differing += sum(1 for line in section_diff[2:] if line.startswith(("+", "-")))  # after the header
        diff.extend(section_diff)
    shown = diff[:DIFF_LINES_SHOWN]
    if len(diff) > len(shown):
        shown.append(f"... {len(diff) - len(shown)} more lines of diff")
    return SchemaComparison(compared, differing, "\n".join(shown))
