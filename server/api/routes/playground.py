"""GET /playground: the playground's page and its files (the playground package), with a
Content-Security-Policy that allows scripts and styles from this server only: no inline script,
no eval, nothing from elsewhere, no framing. Model output reaches the page as text (textContent),
so even a policy that let markup through would not run it; the policy is the second wall."""

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from playground import STATIC

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class PlaygroundFiles(StaticFiles):
    """The page's modules, styles and vendored library, each with the playground's headers."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


def mount(app: FastAPI) -> None:
    app.mount("/playground/static", PlaygroundFiles(directory=STATIC), name="playground-static")

    @app.get("/playground", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/playground")
