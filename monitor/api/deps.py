"""What route handlers get from their request: the process's components, the body."""

from __future__ import annotations

from fastapi import Request

from monitor.composition import Components
from monitor.errors import PayloadTooLarge

__all__ = ["components", "read_body"]


def components(request: Request) -> Components:
    """The components of the app serving this request (built by :mod:`monitor.composition`)."""
    found: Components = request.app.state.components
    return found


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
