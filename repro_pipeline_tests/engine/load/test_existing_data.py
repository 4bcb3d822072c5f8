"""The pure parts of ``on_existing_data`` for a given target: how a differing pg_dump entry is named."""

from __future__ import annotations

from repro_pipeline.engine.load.existing_data import _entry_label


def test_an_entry_is_named_by_its_kind_and_qualified_name() -> None:
    assert _entry_label("users; Type: TABLE; Schema: public") == "TABLE public.users"
    assert (
        _entry_label("users users_pkey; Type: CONSTRAINT; Schema: app") == "CONSTRAINT app.users users_pkey"
    )
    assert _entry_label("pgcrypto; Type: EXTENSION; Schema: -") == "EXTENSION pgcrypto"
    assert _entry_label("something pg_dump wrote otherwise") == "something pg_dump wrote otherwise"
