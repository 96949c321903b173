"""What route handlers get from their request: the process's components, the body."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from monitor.composition import Components
from monitor.errors import PayloadTooLarge

if TYPE_CHECKING:
    from monitor.alerting import AlertingRuntime

__all__ = ["alerting_runtime", "components", "in_thread", "read_body"]

T = TypeVar("T")


def components(request: Request) -> Components:
    """The components of the app serving this request (built by :mod:`monitor.composition`)."""
    found: Components = request.app.state.components
    return found


def alerting_runtime(request: Request) -> AlertingRuntime:
    """The alerting runtime (rules engine, alert store, delivery worker) of this process."""
    return components(request).alerting


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call off the event loop (its errors map through the app's one
    translation, ``monitor.errors.translate``)."""
    return await run_in_threadpool(lambda: fn(*args, **kwargs))


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes the configured limit."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
