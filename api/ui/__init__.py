"""The web UI: server-rendered pages for the team, served by the API process itself.

Jinja2 templates (`templates/`), htmx for the parts that update live (a fragment polled in
place), uPlot for metric curves and plotly for a landscape's surface and a sweep's parallel
coordinates, all vendored under `static/vendor/` (no build step, no CDN: the pages and /docs
work offline). Pages sign in with an API token and keep a signed session cookie (`session`);
they read through the REST routes' own functions and the shared data functions, so the rules
live once. Curves are downsampled in
the database (`series`). Nothing here imports torch or numpy.

Pages: /jobs, /jobs/{id}, /jobs/{id}/landscape, /sweeps, /sweeps/{id}, /queue, /compare,
/datasets, /login; /docs and /redoc for the REST API.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui import docs
from api.ui.deps import install_error_pages
from api.ui.render import STATIC
from api.ui.routes import actions, auth, compare, datasets, job, jobs, landscape, notifications, queue, sweeps


def install_ui(app: FastAPI) -> None:
    """Mount the pages, their static files and the local /docs and /redoc on the app."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(docs.router)
    app.include_router(auth.router)
    app.include_router(jobs.router)  # /jobs/table before /jobs/{job_id}
    for module in (job, actions, landscape, queue, compare, datasets, sweeps, notifications):
        app.include_router(module.router)
    install_error_pages(app)
