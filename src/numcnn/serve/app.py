"""The HTTP routes: each reads the request, hands the work to an Explainer in a worker thread,
and answers JSON. No numerics live here.

::

    GET  /                the page (static/index.html); /static/* its script and style
    GET  /api/model       architecture, input shape, class names, normalisation
    POST /api/predict     body: image bytes -> {"predictions": [{"class", "index", "probability"}, ...]}
    POST /api/explain     body: image bytes -> layer outputs, logits, softmax, saliency
    POST /api/detail?layer=L&channel=C&y=Y&x=X   body: image bytes -> one output pixel explained
    GET  /api/receptive?layer=L&y=Y&x=X         the input region that pixel (Y, X) of layer L can depend on
    POST /api/playground?kernel=K&stride=S&padding=P&dilation=D&channel=C[&layer=L]
                          body: image bytes -> one map convolved with those settings, or why it cannot be

L is a layer's path: "3" for top-level layer 3, "3.0" for the first layer inside the block at 3.

Every error is JSON {"error": "..."}: 400 for a body that is not a readable image or a bad
query, 413 for a body over MAX_BODY_BYTES or a picture beyond Pillow's decompression-bomb
limit, 404 and 405 for a wrong path or method, 500 for anything unforeseen.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ConfigError, NumcnnError
from .explain import Explainer
from .payload import ImageTooLarge

MAX_BODY_BYTES = 10 * 2**20
STATIC_DIR = Path(__file__).parent / "static"


class BodyTooLarge(HTTPException):
    def __init__(self, size: str):
        super().__init__(413, f"the request body is {size}; the limit is {MAX_BODY_BYTES:,} bytes (10 MiB)")


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 once it passes MAX_BODY_BYTES.

    A declared Content-Length over the limit is refused before anything is read; a body sent
    without one (chunked) or longer than declared is cut off as soon as it passes the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"{int(declared):,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"more than {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _query_int(request: Request, name: str) -> int:
    text = request.query_params.get(name)
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"query parameter {name} must be an integer, got {text!r}") from None


def _query_layer(request: Request) -> str:
    path = request.query_params.get("layer")
    if not path:
        raise ConfigError("query parameter layer is required: a layer's path, such as 3 or 3.0")
    return path


def create_app(explainer: Explainer) -> Starlette:
    """The ASGI app serving one model's page and API."""

    async def page(request):
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def model(request):
        return JSONResponse(explainer.describe())

    async def examples(request):
        return JSONResponse({"examples": await run_in_threadpool(explainer.example_images)})

    async def predict(request):
        body = await read_body(request)
        predictions = await run_in_threadpool(lambda: explainer.predict(explainer.read(body)[0]))
        return JSONResponse({"predictions": predictions})

    async def explain(request):
        body = await read_body(request)

        def work():
            x, inverted = explainer.read(body)
            return {**explainer.explain(x), "inverted": inverted}

        return JSONResponse(await run_in_threadpool(work))

    async def detail(request):
        where = [_query_layer(request)] + [_query_int(request, name) for name in ("channel", "y", "x")]
        body = await read_body(request)
        return JSONResponse(await run_in_threadpool(lambda: explainer.detail(explainer.read(body)[0], *where)))

    async def receptive(request):
        where = [_query_layer(request)] + [_query_int(request, name) for name in ("y", "x")]
        return JSONResponse(explainer.receptive(*where))

    async def playground(request):
        layer = request.query_params.get("layer") or None  # none: the input image
        settings = [_query_int(request, name) for name in ("channel", "kernel", "stride", "padding", "dilation")]
        body = await read_body(request)
        return JSONResponse(await run_in_threadpool(
            lambda: explainer.playground(explainer.read(body)[0], layer, *settings)))

    return Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/api/model", model, methods=["GET"]),
            Route("/api/examples", examples, methods=["GET"]),
            Route("/api/predict", predict, methods=["POST"]),
            Route("/api/explain", explain, methods=["POST"]),
            Route("/api/detail", detail, methods=["POST"]),
            Route("/api/receptive", receptive, methods=["GET"]),
            Route("/api/playground", playground, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: _http_error, ImageTooLarge: _error(413), NumcnnError: _error(400),
                            Exception: _internal_error},
    )


async def _http_error(request, exc: HTTPException):
    message = exc.detail
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; use {exc.headers['Allow']}"
    elif exc.status_code == 404:
        message = (f"no such route: {request.url.path} (the API is /api/model, /api/examples, /api/predict, "
                   f"/api/explain, /api/detail, /api/receptive, /api/playground)")
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request, exc: Exception):
    # Anything unforeseen is still JSON, naming the failure; the server keeps running.
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def _error(status: int):
    async def handler(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=status)
    return handler
