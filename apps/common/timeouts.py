"""A client that stops sending its request: how the server's socket timeout shows up.

The gunicorn worker (config/gunicorn_worker.py) bounds each wait for the client once a request's
head is parsed; a body read that waits longer fails with the error `socket_timed_out` knows,
which Django wraps in `UnreadablePostError`. Such a request is answered 408 `request_timeout`.
"""

from __future__ import annotations

import errno

REQUEST_TIMEOUT_CODE = "request_timeout"
BODY_TIMEOUT_DETAIL = "The request body stopped arriving; the server gave up waiting for it."


def socket_timed_out(error: BaseException) -> bool:
    """Whether a socket call, or the read that `error` wraps, failed because a timeout ran out:
    the kernel's (`SO_RCVTIMEO`, `SO_SNDTIMEO`: EAGAIN on a blocking socket) or Python's."""
    for candidate in (error, error.__cause__):
        if isinstance(candidate, TimeoutError) or (
            isinstance(candidate, OSError) and candidate.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        ):
            return True
    return False
