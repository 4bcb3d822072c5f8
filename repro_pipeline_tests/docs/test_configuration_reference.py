"""docs/configuration.md is what the models' JSON Schema gives, and every key of it is described."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from repro_pipeline.cli.config_reference import (
    REFERENCE_PATH,
    config_schemas,
    main,
    render_reference,
    undocumented_keys,
)


def test_the_committed_reference_matches_the_schema() -> None:
    assert REFERENCE_PATH.read_text(encoding="utf-8") == render_reference(), (
        "docs/configuration.md is out of date: run python -m repro_pipeline.cli.config_reference"
    )


def test_every_key_of_both_files_is_in_the_reference_with_a_description() -> None:
    assert undocumented_keys(config_schemas()) == []
    reference = render_reference()
    for key in ("`strict_autodetect`", "`cross_tenant_references`", "`max_rows_per_parent`", "`json_path`"):
        assert key in reference


def test_a_key_without_a_description_is_reported() -> None:
    class Undocumented(BaseModel):
        described: int = 1
        """A key with its docstring."""
        bare: str = ""

        model_config = ConfigDict(use_attribute_docstrings=True)

    assert undocumented_keys({"x.yaml": Undocumented.model_json_schema()}) == ["Undocumented.bare"]


def test_check_fails_on_a_drifted_file_and_write_repairs_it(tmp_path: Path) -> None:
    reference = tmp_path / "configuration.md"
    reference.write_text(render_reference().replace("strict_autodetect", "strict"), encoding="utf-8")
    assert main(["--check", "--output", str(reference)]) == 1
    assert main(["--output", str(reference)]) == 0
    assert main(["--check", "--output", str(reference)]) == 0
