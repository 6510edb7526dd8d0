"""``numcnn serve``: a web page that explains a trained model on the user's own drawing or photo.

::

    numcnn serve runs/demo                  # http://127.0.0.1:8000/
    pip install 'numcnn[serve]'             # Starlette and uvicorn

``explain`` computes (numcnn only), with ``blocks`` (the layer tree, blocks opened),
``details`` (one pixel's arithmetic), ``receptive`` (the receptive field on the image) and
``playground`` (the conv arithmetic playground); ``payload`` checks uploads and encodes arrays;
``app`` is the Starlette routes; ``static/`` holds the page, served from the package, so it
works offline. Nothing in the core knows this module exists.
"""

from __future__ import annotations

import socket
from typing import Callable

from ..errors import ConfigError

__all__ = ["require", "create_app", "serve", "Explainer"]


def require() -> None:
    """Raise ConfigError naming the extra when Starlette, uvicorn or Pillow (every request decodes
    an image) is missing: said before any work, not as a failure of every request."""
    missing = []
    for module, name in (("starlette", "starlette"), ("uvicorn", "uvicorn"), ("PIL", "Pillow")):
        try:
            __import__(module)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"numcnn serve needs {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'numcnn[serve]'")


def __getattr__(name):  # the app and the Explainer import Starlette and Pillow; only on use
    if name == "create_app":
        from .app import create_app
        return create_app
    if name == "Explainer":
        from .explain import Explainer
        return Explainer
    raise AttributeError(name)


def __dir__():
    # The lazy names too, so that dir(), completion and the API reference list every public name.
    return sorted(set(globals()) | set(__all__))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. OSError if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def serve(model_path, host: str = "127.0.0.1", port: int = 8000, log: Callable[[str], None] = print,
          device: str = "cpu", examples=None) -> int:
    """Serve the page for the model at model_path until Ctrl-C, computing on device; returns 0.

    examples: (x (K, C, H, W) uint8, y (K,)) for the page to open on (a pretrained model's);
    default one test image per class of the run's dataset, when it is on this machine.

    The extra, the model and the port are all checked before the URL is printed: a missing
    extra is a ConfigError, a bad model file a ModelFileError, a port in use an OSError.
    """
    require()
    import uvicorn

    from .app import create_app
    from .explain import Explainer

    explainer = Explainer.from_path(model_path, device, examples)
    sock = bind(host, port)
    config = uvicorn.Config(create_app(explainer), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    c, h, w = explainer.input_shape
    log(f"serving {model_path} ({len(explainer.names)} classes, input {c} x {h} x {w}) at {url_of(sock)}")
    log("press Ctrl-C to stop")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down gracefully, then raises the signal again
        pass
    finally:
        sock.close()
    log("stopped")
    return 0
