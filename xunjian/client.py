"""A small client of the collector's JSON API; the CLI reads everything through it."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9471"


class ApiError(Exception):
    """The collector could not be reached or refused the request; the message says which and why."""


def collector_url() -> str:
    return os.environ.get("XUNJIAN_URL", DEFAULT_URL).rstrip("/")


class Client:
    def __init__(self, base_url: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = (base_url or collector_url()).rstrip("/")
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return self._request(urllib.request.Request(url, method="GET"))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}{path}", data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        return self._request(req)

    def _request(self, req: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            raise ApiError(f"{req.get_method()} {req.full_url}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise ApiError(
                f"cannot reach the collector at {self.base_url} ({exc.reason}); is it running? "
                "Set XUNJIAN_URL to point elsewhere."
            ) from None
        except (TimeoutError, ConnectionError) as exc:
            raise ApiError(f"cannot reach the collector at {self.base_url} ({exc})") from None
