"""/docs (Swagger UI) and /redoc from the vendored copies under static/vendor, so they work offline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from api.ui.render import static_url

router = APIRouter(include_in_schema=False)

OAUTH2_REDIRECT = "/docs/oauth2-redirect"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=request.app.openapi_url, title=f"{request.app.title} - API docs",
                               swagger_js_url=static_url("vendor/swagger-ui/swagger-ui-bundle.js"),
                               swagger_css_url=static_url("vendor/swagger-ui/swagger-ui.css"),
                               swagger_favicon_url=static_url("favicon.svg"), oauth2_redirect_url=OAUTH2_REDIRECT,
                               # no badge from validator.swagger.io: nothing leaves the site
                               swagger_ui_parameters={"validatorUrl": None})


@router.get(OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=request.app.openapi_url, title=f"{request.app.title} - API reference",
                          redoc_js_url=static_url("vendor/redoc/redoc.standalone.js"),
                          redoc_favicon_url=static_url("favicon.svg"), with_google_fonts=False)
