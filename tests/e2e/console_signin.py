"""Sign in to the console in headless Chromium through chromedriver's W3C WebDriver API and take a screenshot.

    python tests/e2e/console_signin.py CHROMIUM URL TOKEN OUT.png

Prints the signed-in name and the page's text. No Selenium: the WebDriver protocol is a few JSON requests.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--window-size=1280,900"]


def call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())["value"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(chromium: str, url: str, token: str, out: str) -> int:
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    port = free_port()
    profile = tempfile.mkdtemp(prefix="xunjian-chromium-")
    driver = subprocess.Popen([driver_bin, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": [*FLAGS, f"--user-data-dir={profile}"]}}}}
        session = call(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        try:
            call(base, "POST", f"{s}/url", {"url": url})

            def find(css: str) -> str:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        found = call(base, "POST", f"{s}/element", {"using": "css selector", "value": css})
                        return str(next(iter(found.values())))
                    except urllib.error.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)

            field = find("#token")
            call(base, "POST", f"{s}/element/{field}/value", {"text": token})
            call(base, "POST", f"{s}/element/{find('#signinform button')}/click", {})
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline:
                text = call(base, "GET", f"{s}/element/{find('body')}/text")
                if "updated" in text and "his-app" in text:
                    break
                time.sleep(0.3)
            shot = call(base, "GET", f"{s}/screenshot")
            with open(out, "wb") as f:
                f.write(base64.b64decode(shot))
            print(text)
        finally:
            call(base, "DELETE", s)
    finally:
        driver.terminate()
        driver.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
