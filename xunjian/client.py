"""A small client of the collector's JSON API; the CLI reads everything through it.

It sends an API token when it has one: `$XUNJIAN_TOKEN`, else the first line of the file `$XUNJIAN_TOKEN_FILE`
(default ~/.config/xunjian/token, which must not be readable by others). `$XUNJIAN_CA` names the CA certificate to
trust for an https:// `$XUNJIAN_URL`.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9471"
DEFAULT_TOKEN_FILE = Path("~/.config/xunjian/token")


class ApiError(Exception):
    """The collector could not be reached or refused the request; the message says which and why."""


def collector_url() -> str:
    return os.environ.get("XUNJIAN_URL", DEFAULT_URL).rstrip("/")


def api_token() -> str | None:
    """The token to send: $XUNJIAN_TOKEN, or the token file; ApiError for a token file others can read."""
    token = os.environ.get("XUNJIAN_TOKEN", "").strip()
    if token:
        return token
    path = Path(os.environ.get("XUNJIAN_TOKEN_FILE", str(DEFAULT_TOKEN_FILE))).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ApiError(f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines and lines[0].strip() else None


class Client:
    def __init__(self, base_url: str | None = None, timeout: float = 10.0, token: str | None = None) -> None:
        self.base_url = (base_url or collector_url()).rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else api_token()
        ca = os.environ.get("XUNJIAN_CA")
        self.context = ssl.create_default_context(cafile=ca) if ca else None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return self._request(urllib.request.Request(url, method="GET", headers=self._headers()))

    def get_pages(self, path: str, page: int = 5000, **params: Any) -> list[Any]:
        """Every row of a paged list (/api/v1/checks): pages of `page` rows, each continuing after the cursor of
        the previous page's last row, until a page comes back shorter."""
        rows: list[Any] = []
        after = None
        while True:
            got = self.get(path, **params, limit=page, after=after)
            rows.extend(got)
            if len(got) < page or not got or "cursor" not in got[-1]:
                return rows
            after = got[-1]["cursor"]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}{path}", data=data, method="POST",
            headers=self._headers({"Content-Type": "application/json"}))
        return self._request(req)

    def _request(self, req: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            hint = ""
            if exc.code == 401:
                hint = (" (set XUNJIAN_TOKEN or put a token in ~/.config/xunjian/token; an admin makes one with "
                        "`xunjian tokens create`)")
            raise ApiError(f"{req.get_method()} {req.full_url}: HTTP {exc.code}: {detail}{hint}") from None
        except urllib.error.URLError as exc:
            raise ApiError(
                f"cannot reach the collector at {self.base_url} ({exc.reason}); is it running? "
                "Set XUNJIAN_URL to point elsewhere."
            ) from None
        except (TimeoutError, ConnectionError) as exc:
            raise ApiError(f"cannot reach the collector at {self.base_url} ({exc})") from None
