"""Submitting a sweep: every child job built and checked as a submission would be, then all of them
stored in one transaction, or none.

A bad point is a 422 that names the axis and its value (`body.axes.knn.k`, "knn.k=0: spec.knn.k:
Input should be greater than 0"); an error no axis explains (a template field, a path below the
data root) names the point's values. The checks of `POST /jobs` run on each child: its schema,
then `resolve` (GPUs, data and code paths, source jobs).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException
from sqlalchemy.orm import Session

from api.routes.jobs import resolve
from api.schemas import JOB_FILE_KEYS, JobCreateBase
from api.sweep_schemas import SweepCreate
from api.validation import check_spec_size, job_create_from, unprocessable
from shared.db import Job, Sweep, User
from shared.job_lifecycle import JobError, create_job
from shared.prometheus import JOBS_SUBMITTED
from shared.settings import Settings
from shared.spec_paths import SpecPathError, with_changes
from shared.sweeps import SweepError, expand, point_label

PAIR = ("pretrain", "evaluate")
"""The types of a two-job template, in order: the evaluation reads the pretraining's checkpoint."""
PLACEHOLDER_SOURCE = 1
"""`source.job` of a two-job template's evaluation while it is checked, before its pretraining has an id."""


@dataclass
class Child:
    """One job of one point: its submission as the axes made it, and which axes reached it."""

    index: int
    raw: dict[str, Any]
    axes: dict[str, str] = field(default_factory=dict)  # axis path as given -> path inside this job's spec


def axes_json(sweep_in: SweepCreate) -> dict[str, Any]:
    """The axes as stored and expanded: lists as given, ranges as {distribution, low, high}."""
    return {path: values if isinstance(values, list) else values.model_dump() for path, values in sweep_in.axes.items()}


def template_jobs(sweep_in: SweepCreate) -> list[dict[str, Any]]:
    """The template as a list of job submissions: one job, or a pretraining and its evaluation."""
    jobs = sweep_in.template if isinstance(sweep_in.template, list) else [sweep_in.template]
    for i, job in enumerate(jobs):
        loc: list[str | int] = ["template", i] if len(jobs) > 1 else ["template"]
        unknown = sorted(set(job) - set(JOB_FILE_KEYS))
        if unknown or "type" not in job or not isinstance(job.get("spec"), dict):
            raise unprocessable(loc, "a template job is {type, spec, ...} as POST /jobs takes it"
                                     + (f"; unknown key {unknown[0]!r}" if unknown else ""))
    if len(jobs) == 2:
        if tuple(job["type"] for job in jobs) != PAIR:
            raise unprocessable(["template"], "a two-job template is [a pretrain job, an evaluate job of it]")
        source = jobs[1]["spec"].get("source")
        if not isinstance(source, dict) or source.get("kind") != "job":
            raise unprocessable(["template", 1, "spec", "source"], "the evaluation of a two-job template reads "
                                "its pretraining: source: {kind: job} (the sweep sets source.job)")
    return jobs


def route_axes(jobs: list[dict[str, Any]], axes: dict[str, Any]) -> list[dict[str, str]]:
    """For each template job, {axis path as given: path inside its spec}; a two-job template's axes
    start with the job's type (pretrain.dino.lr, evaluate.knn.k)."""
    routes: list[dict[str, str]] = [{} for _ in jobs]
    for path in axes:
        if len(jobs) == 1:
            routes[0][path] = path
            continue
        head, _, rest = path.partition(".")
        if head not in PAIR or not rest:
            raise unprocessable(["axes", path], f"axis {path!r}: with a two-job template an axis starts with "
                                                "pretrain. or evaluate. (e.g. pretrain.dino.lr)")
        routes[PAIR.index(head)][path] = rest
    return routes


def _located(exc: HTTPException, prefix: list[str | int]) -> HTTPException:
    """A 422 of a template job, located inside the template."""
    detail = [{**e, "loc": ["body", *prefix, *e["loc"][1:]]} for e in exc.detail] if isinstance(exc.detail, list) \
        else exc.detail
    return HTTPException(exc.status_code, detail=detail, headers=exc.headers)


def _point_error(exc: HTTPException, child: Child, point: dict[str, Any], number: int) -> HTTPException:
    """A child's error as the sweep's: at the axis whose path it falls under, else at the point."""
    if exc.status_code != 422 or not isinstance(exc.detail, list) or not exc.detail:
        return exc
    first = exc.detail[0]
    where = [str(part) for part in first.get("loc", [])[1:]]
    field_path = ".".join(where[1:]) if where[:1] == ["spec"] else ""
    for axis, inner in child.axes.items():
        if field_path and (field_path == inner or field_path.startswith(inner + ".")
                           or inner.startswith(field_path + ".")):
            return unprocessable(["axes", axis], f"{axis}={json.dumps(point[axis])}: {'.'.join(where)}: "
                                                 f"{first['msg']}")
    return unprocessable(["axes"], f"point {number} ({point_label(point)}): {'.'.join(where) or 'job'}: "
                                   f"{first['msg']}")


def build_children(sweep_in: SweepCreate, settings: Settings) -> tuple[list[dict[str, Any]], list[list[Child]]]:
    """The points and, for each, its template jobs with the axes' values set, each checked against its
    job type's schema; nothing is stored."""
    jobs = template_jobs(sweep_in)
    routes = route_axes(jobs, sweep_in.axes)
    try:
        points = expand(axes_json(sweep_in), mode=sweep_in.mode, n=sweep_in.n, seed=sweep_in.seed,
                        max_points=settings.max_sweep_points)
    except SweepError as exc:
        raise unprocessable([exc.field], str(exc)) from None
    bases = []
    for i, job in enumerate(jobs):
        raw = copy.deepcopy(job)
        if i == 1:
            raw["spec"]["source"]["job"] = PLACEHOLDER_SOURCE
        try:
            checked = job_create_from(raw)
        except HTTPException as exc:
            raise _located(exc, ["template", i] if len(jobs) > 1 else ["template"]) from None
        bases.append({**raw, "spec": checked.spec.model_dump(mode="json")})
    children = []
    for number, point in enumerate(points, start=1):
        row = []
        for i, base in enumerate(bases):
            child = Child(index=i, raw=base, axes=routes[i])
            try:
                spec = with_changes(base["spec"], {inner: point[axis] for axis, inner in routes[i].items()})
            except SpecPathError as exc:
                axis = next(a for a, inner in routes[i].items() if inner == exc.path)
                raise unprocessable(["axes", axis], f"axis {axis!r}: {exc}") from None
            name = f"{base.get('name') or sweep_in.name or 'sweep'} [{point_label(point)}]"[:200]
            child.raw = {**base, "spec": spec, "name": name}
            try:
                check_spec_size(spec, settings.max_spec_bytes)
                job_create_from(child.raw)
            except HTTPException as exc:
                raise _point_error(exc, child, point, number) from None
            row.append(child)
        children.append(row)
    return points, children


def _store_child(*, session: Session, settings: Settings, owner: User, sweep: Sweep, child: Child,
                 point: dict[str, Any], number: int, source: Job | None) -> Job:
    raw = child.raw
    if source is not None:
        raw = {**raw, "spec": {**raw["spec"], "source": {**raw["spec"]["source"], "job": source.id}}}
    try:
        job_in: JobCreateBase = job_create_from(raw)
        resolved = resolve(session=session, settings=settings, owner=owner, job_in=job_in)
        job = create_job(session=session, job_type=resolved.type, spec=resolved.spec, owner=owner, name=resolved.name,
                         priority=resolved.priority, depends_on=resolved.depends_on,
                         max_attempts=resolved.max_attempts, gpus=resolved.gpus, tags=resolved.tags,
                         notes=resolved.notes, max_runtime=resolved.max_runtime,
                         max_runtime_from=resolved.max_runtime_from)
    except JobError as exc:
        raise _point_error(unprocessable(["depends_on"], str(exc)), child, point, number) from None
    except HTTPException as exc:
        raise _point_error(exc, child, point, number) from None
    job.sweep_id, job.sweep_point = sweep.id, point
    return job


def submit_sweep(*, session: Session, settings: Settings, owner: User, sweep_in: SweepCreate) -> Sweep:
    """Check every child, then store the sweep and its children as queued jobs in one transaction (their
    INSERTs ask for a dispatch pass, as a job's does); a child refused at any point stores nothing."""
    points, children = build_children(sweep_in, settings)
    sweep = Sweep(name=sweep_in.name, owner=owner, mode=sweep_in.mode, seed=sweep_in.seed,
                  axes=axes_json(sweep_in), template=template_jobs(sweep_in))
    try:
        session.add(sweep)
        session.flush()
        for number, (point, row) in enumerate(zip(points, children, strict=True), start=1):
            source = None
            for child in row:
                source = _store_child(session=session, settings=settings, owner=owner, sweep=sweep, child=child,
                                      point=point, number=number, source=source if child.index == 1 else None)
        session.flush()
    except BaseException:
        session.rollback()
        raise
    session.commit()
    for row in children:
        for child in row:
            JOBS_SUBMITTED.labels(type=child.raw["type"]).inc()
    return sweep
