"""`bosun spec`: the field reference of every job type, read from the registry."""

from __future__ import annotations

import pytest

from api.cli.spec import field_rows
from shared.job_types import get_job_type, job_types
from tests.api.cli.conftest import bosun


def test_spec_lists_the_types() -> None:
    result = bosun("spec")
    assert result.exit_code == 0, result.output
    for job_type in job_types():
        assert job_type.name in result.output and job_type.description in result.output


@pytest.mark.parametrize("job_type", job_types(), ids=lambda t: t.name)
def test_spec_of_a_type_shows_every_field_with_type_default_and_description(job_type) -> None:
    rows = list(field_rows(job_type.spec))
    paths = {row[0] for row in rows}
    assert set(job_type.spec.model_fields) <= paths
    result = bosun("spec", job_type.name)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for path, type_, default, description in rows:
        line = next((ln for ln in lines if ln.startswith(f"│ {path} ")), None)
        assert line is not None, path
        assert type_.split(" ")[0] in line and default.split(" ")[0] in line and description.split(" ")[0] in line


def test_spec_rows_expand_blocks_and_union_variants() -> None:
    rows = {row[0]: row for row in field_rows(get_job_type("evaluate").spec)}
    assert rows["knn.k"][2] == "[10, 20, 100, 200]" and rows["knn.temperature"][2] == "0.07"
    assert rows["backbone.name"][2] == "required" and "timm model name" in rows["backbone.name"][3]
    assert rows["dataset[kind=cifar10|cifar100].path"][1] == "str"
    pretrain = {row[0] for row in field_rows(get_job_type("pretrain").spec)}
    assert "dino.out_dim" in pretrain and "dino.epochs" in pretrain


def test_spec_of_an_unknown_type_names_the_known_ones() -> None:
    result = bosun("spec", "train")
    assert result.exit_code == 2 and "known: evaluate, landscape, pretrain" in result.output
