"""HTTP GET (and POST) from inside a network namespace.

Each namespace has its own loopback, so a node's API on 127.0.0.1 answers only
there. A short `python -I -S -c` with urllib runs in the namespace and prints
status and body as JSON.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .errors import NodeApiUnreachable, NodeError
from .netns import ns_argv

_FETCH = """
import base64, json, sys, urllib.error, urllib.request
url, timeout, method = sys.argv[1], float(sys.argv[2]), sys.argv[3]
request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
try:
    with urllib.request.urlopen(request, timeout=timeout) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
except (OSError, ValueError) as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(0)
print(json.dumps({"status": status, "body": base64.b64encode(body).decode()}))
"""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as err:
            raise NodeError(f"answer is not JSON: {self.body[:200]!r}") from err


def http_get(netns_name: str, url: str, *, timeout: float = 5.0) -> HttpResponse:
    return http_request(netns_name, url, timeout=timeout)


def http_request(
    netns_name: str, url: str, *, method: str = "GET", timeout: float = 5.0
) -> HttpResponse:
    """`method` (GET, or POST with an empty body) `url` from inside the namespace."""
    argv = ns_argv(
        netns_name, [sys.executable, "-I", "-S", "-c", _FETCH, url, str(timeout), method]
    )
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout + 5.0, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise NodeApiUnreachable(f"{method} {url} in {netns_name}: no answer") from err
    if result.returncode != 0:
        raise NodeApiUnreachable(f"{method} {url} in {netns_name}: {result.stderr.strip()}")
    answer = json.loads(result.stdout)
    if "error" in answer:
        raise NodeApiUnreachable(f"{method} {url} in {netns_name}: {answer['error']}")
    return HttpResponse(status=int(answer["status"]), body=base64.b64decode(answer["body"]))
