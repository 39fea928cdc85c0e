"""WSGI-level helpers for the Django side of the platform."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def buffer_chunked_bodies(app: WSGIApp) -> WSGIApp:
    """Give Django the body of a `Transfer-Encoding: chunked` request.

    Django reads `CONTENT_LENGTH` bytes of a request body and so sees a chunked one (which has
    no Content-Length) as empty. gunicorn hands the decoded body to `wsgi.input`; this reads it
    up to one byte past `MAX_REQUEST_BODY_BYTES` and sets `CONTENT_LENGTH`, so Django parses it
    and `BodySizeLimitMiddleware` refuses an oversized one with 413 as for any other body.

    A read that fails as a socket does (the body stopped arriving for the server's timeout, the
    client reset) is handed on to Django as the body: reading it raises the same error, which
    Django turns into `UnreadablePostError` and the middleware into a problem document (408 for
    the timeout), as for a Content-Length body. Raised here, it reached the worker, which closed
    the connection without an answer.
    """

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        stream = environ.get("wsgi.input")
        if chunked and not environ.get("CONTENT_LENGTH") and stream is not None:
            try:
                body = stream.read(settings.MAX_REQUEST_BODY_BYTES + 1)
            except OSError as error:
                environ["wsgi.input"] = UnreadableBody(error)
                environ["CONTENT_LENGTH"] = "1"  # so that Django reads it, and meets the error
            else:
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return application


class UnreadableBody:
    """A request body whose read failed: every read raises that error again."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def read(self, *_args: Any) -> bytes:
        raise self.error

    readline = read


def no_body_for_head(app: WSGIApp) -> WSGIApp:
    """Answer `HEAD` with the headers of the `GET` and no body.

    Django builds a HEAD answer as it builds the GET, body included (only its development
    server strips it). gunicorn drops those bytes, as RFC 9110 requires, but logs a warning for
    each such answer: a load balancer probing `/health` with HEAD every few seconds filled the
    log with them. The response is closed unread, so Django's end-of-request work still runs.
    """

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        result = app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "HEAD":
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return []

    return application
