"""What every CLI backend's HTTP side shares: the server's API called through ``check``.

``check`` (``monitor.cli_common``) turns an error answer into the command's one error line and
exit code, so each backend method only says which route it calls and what it keeps.
"""

from __future__ import annotations

from typing import Any

import httpx


class HttpRoutes:
    def __init__(self, client: httpx.Client, check: Any) -> None:
        self.client = client
        self.check = check

    def _api(self, method: str, path: str, **kw: Any) -> Any:
        return self.check(self.client.request(method, path, **kw))
