"""/openapi.json (and so /docs) shows every field of every job type's spec, with its default."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

from shared.job_types import job_types


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (inside Optional, unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def reachable_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    todo = [model]
    while todo:
        current = todo.pop()
        if current.__name__ in found:
            continue
        found[current.__name__] = current
        for field in current.model_fields.values():
            todo += models_in(field.annotation)
    return found


def refs_under(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return own.union(*(refs_under(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs_under(v) for v in node))
    return set()


def closure(schemas: dict[str, Any], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += refs_under(schemas[name])
    return seen


@pytest.fixture(scope="module")
def openapi(tmp_path_factory) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from shared.settings import Settings

    client = TestClient(create_app(Settings(home=tmp_path_factory.mktemp("home"))))
    return client.get("/openapi.json").json()


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/validate"])
@pytest.mark.parametrize("job_type", job_types(), ids=lambda t: t.name)
def test_every_spec_field_of_every_type_is_in_the_schema_with_its_default(openapi, job_type, path) -> None:
    schemas = openapi["components"]["schemas"]
    body = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    variant = body["discriminator"]["mapping"][job_type.name].rsplit("/", 1)[-1]
    assert schemas[variant]["properties"]["type"]["const"] == job_type.name
    assert schemas[variant]["properties"]["spec"]["$ref"].endswith(f"/{job_type.spec.__name__}")
    under_type = closure(schemas, variant)
    checked = 0
    for name, model in reachable_models(job_type.spec).items():
        assert name in under_type, f"{name} (in the {job_type.name} spec) is not under {variant}"
        properties = schemas[name]["properties"]
        for field_name, field in model.model_fields.items():
            key = field.alias or field_name
            assert key in properties, f"{job_type.name}: {name}.{key} is missing from the schema"
            prop = properties[key]
            if field.default is None:  # FastAPI writes the document without nulls: optional, no default shown
                assert key not in schemas[name].get("required", []), (name, key)
            elif field.default is not PydanticUndefined or field.default_factory is not None:
                assert "default" in prop, f"{job_type.name}: {name}.{key} shows no default"
                shown = TypeAdapter(field.annotation).validate_python(prop["default"])
                assert shown == field.get_default(call_default_factory=True), (name, key, prop["default"])
            else:
                assert key in schemas[name].get("required", []), (name, key)
            if field.description:
                assert prop.get("description") == field.description, (name, key)
            checked += 1
    nested = 10 if len(reachable_models(job_type.spec)) > 1 else 0  # a flat spec (script) has no blocks
    assert checked >= len(job_type.spec.model_fields) + nested  # nested blocks were walked, not just the top


def test_every_type_is_a_variant_and_the_type_filter_lists_them(openapi) -> None:
    body = openapi["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["discriminator"]["mapping"]) == {t.name for t in job_types()}
    params = {p["name"]: p for p in openapi["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    enum = params["type"]["schema"]["anyOf"][0]["enum"]
    assert set(enum) == {t.name for t in job_types()}


