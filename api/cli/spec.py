"""`bosun spec [TYPE]`: the job types, and the field reference of one type's spec (types, defaults,
descriptions), read from the job-type registry's pydantic models: the same ones the API validates with."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.markup import escape
from rich.table import Table

from api.cli.console import console, fail
from shared.job_types import UnknownJobType, get_job_type, job_types

app = typer.Typer()


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (inside Optional, unions and Annotated; not in lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (Annotated, Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def type_name(annotation: Any) -> str:
    """A short readable type: `int`, `dino|simclr`, `list[str]`, `DinoOptions | None`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is Annotated:
        return type_name(args[0])
    if origin is Literal:
        return "|".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(its fields' defaults)"
    return json.dumps(value, default=str)


def _tag(model: type[BaseModel], discriminator: str | None) -> str:
    """`kind=cifar10|cifar100`: the value of the field that tells a union's variants apart."""
    field = model.model_fields.get(discriminator or "kind")
    if field is not None and typing.get_origin(field.annotation) is Literal:
        return f"{discriminator or 'kind'}={'|'.join(str(a) for a in typing.get_args(field.annotation))}"
    return model.__name__


def field_rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(dotted field, type, default, description) of every field, nested blocks expanded below their field."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        yield path, type_name(field.annotation), _default(field), field.description or ""
        blocks = _models(field.annotation)
        discriminator = field.discriminator if isinstance(field.discriminator, str) else None
        for block in blocks:
            inner = f"{path}[{_tag(block, discriminator)}]." if len(blocks) > 1 else f"{path}."
            yield from field_rows(block, inner)


@app.command("spec")
def spec_(job_type: Annotated[str | None, typer.Argument(help="a job type; without one, the types")] = None) -> None:
    """The job types, or the fields of one type's spec with their types, defaults and descriptions."""
    if job_type is None:
        table = Table("type", "GPUs", "fans out", "what it does", title="job types (bosun spec TYPE for the fields)")
        for t in job_types():
            table.add_row(t.name, "0, 1 or more (DDP)" if t.multi_gpu else "0 or 1", "tiles" if t.fans_out else "",
                          escape(t.description))
        console.print(table)
        return
    try:
        declared = get_job_type(job_type)
    except UnknownJobType as exc:
        fail(str(exc), 2)
    title = f"{declared.name} spec: {escape(declared.description)}"
    table = Table("field", "type", "default", "description", title=title)
    for row in field_rows(declared.spec):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print(f"a job file: {{type: {declared.name}, spec: {{...}}, name?, priority?, depends_on?, "
                  f"max_attempts?, max_runtime?, gpus?}}; `bosun submit FILE --dry-run` prints it resolved")
