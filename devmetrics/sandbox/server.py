"""The sandbox's HTTP server: a threaded server on loopback that mounts API apps.

Each app (GitHub, GitLab, the package registries) declares its routes as data; the server
does what every forge does alike: counts requests per endpoint, answers conditional GETs
with 304, paginates with Link headers that keep every filter, and injects faults on demand
(status codes, delays, dropped connections, malformed bodies) for the reliability tests.
It keeps a timeline of every answer (faults included) with its time and rate-limit headers,
and `GET /_sandbox/requests` tells a test in another process how many requests it served.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Request:
    method: str
    path: str  # below the app's mount prefix, always starting with "/"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host:port + mount prefix, for URLs in bodies

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_arg(self, name: str, default: int) -> int:
        value = self.arg(name)
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if self.body is None and self.status in (204, 304):
            return b""
        return json.dumps(self.body).encode()


Handler = Callable[..., Response | Any]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str  # the endpoint as counted, e.g. "GET /repos/{owner}/{repo}/pulls"
    handler: Handler


class App:
    """A mounted API: its routes, and a hook to decorate every response it gives."""

    name = "app"

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        """Register `handler` for `template`, e.g. "/repos/{owner}/{repo}/pulls".

        `{name}` matches one path segment; `{name:path}` matches the rest of the path.
        """
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, re.compile(f"^{regex}$"), f"{method} {template}", handler))
            return handler

        return register

    def match(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(request.path)
            if found and route.method == request.method:
                return route, found.groupdict()
        return None

    def not_found(self, request: Request) -> Response:
        return Response(404, {"message": "Not Found"})

    def after(self, request: Request, response: Response) -> None:
        """Called for every response this app gives (rate-limit headers and the like)."""


@dataclass
class Fault:
    """One injected fault. `times` counts how many matching requests it hits (None: all)."""

    path: str = ".*"  # a regex searched in "/prefix/path?query"
    method: str | None = None
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (or before the fault)
    reset: bool = False  # close the connection without an answer
    malformed: bool = False  # answer 200 with a truncated JSON body
    times: int | None = 1
    hits: int = 0
    request_body: str | None = None  # a regex searched in the request body (GraphQL shares a path)


class Faults:
    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, target: str, body: bytes = b"") -> Fault | None:
        with self._lock:
            for fault in self._rules:
                if fault.method not in (None, method) or not re.search(fault.path, target):
                    continue
                if fault.request_body and not re.search(fault.request_body, body.decode(errors="replace")):
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault
        return None


# Rate-limit headers a timeline entry keeps (GitHub's and GitLab's spellings), lower-cased.
RATE_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-resource",
                "ratelimit-remaining", "ratelimit-reset", "retry-after")
CONTROL = "/_sandbox/requests"  # the request count, for a test in another process


@dataclass(frozen=True)
class Exchange:
    """One answered request: when it arrived (time.time()), what it asked, what it got."""

    at: float
    method: str
    target: str  # path?query as sent
    status: int
    headers: dict[str, str]  # the answer's rate-limit headers (RATE_HEADERS), lower-case names


class Sandbox:
    """A threaded HTTP server on loopback serving the mounted apps.

    Use as a context manager, or start()/stop(). `url` is its base URL; `counts` counts
    requests per "app:METHOD template"; `faults` injects failures; `timeline` lists every
    answer, injected faults included, in the order they were given.
    """

    def __init__(self, apps: Sequence[tuple[str, App]], host: str = "127.0.0.1", port: int = 0):
        self.apps = sorted(apps, key=lambda item: -len(item[0]))  # longest prefix first
        self.counts: Counter[str] = Counter()
        self.faults = Faults()
        self.log: list[tuple[str, str, int]] = []  # (method, path?query, status)
        # Every request as it arrived, before faults and mounts: a path outside every mount
        # shows here too (the tests that prove no request leaves a repo's API prefix).
        self.received: list[tuple[str, str]] = []  # (method, raw path?query)
        self.timeline: list[Exchange] = []
        self._answered = threading.Condition()
        self._lock = threading.Lock()
        self._server = _QuietServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> Sandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, prefix: str = "") -> int:
        """Requests counted so far whose endpoint name starts with `prefix`."""
        with self._lock:
            return sum(n for name, n in self.counts.items() if name.startswith(prefix))

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()
            self.received.clear()
            self.timeline.clear()

    def record(self, arrived: float, method: str, target: str, response: Response) -> None:
        """Put an answer on the timeline and wake whoever waits for a request count."""
        headers = {k.lower(): v for k, v in response.headers.items() if k.lower() in RATE_HEADERS}
        with self._answered:
            self.timeline.append(Exchange(arrived, method, target, response.status, headers))
            self._answered.notify_all()

    def wait_for_requests(self, at_least: int, timeout: float) -> int:
        """Block until `at_least` requests were answered (or `timeout` passed): the count."""
        with self._answered:
            self._answered.wait_for(lambda: len(self.timeline) >= at_least, timeout)
            return len(self.timeline)

    def count(self, name: str, method: str, target: str, status: int) -> None:
        with self._lock:
            self.counts[name] += 1
            self.log.append((method, target, status))

    def dispatch(self, request: Request, prefix: str, app: App) -> Response:
        found = app.match(request)
        name = f"{app.name}:{found[0].name}" if found else f"{app.name}:{request.method} ?"
        if found is None:
            response = app.not_found(request)
        else:
            route, params = found
            result = route.handler(request, **params)
            response = result if isinstance(result, Response) else Response(200, result)
        app.after(request, response)
        _conditional_get(request, response)
        self.count(name, request.method, prefix + request.path, response.status)
        return response

    def mount_for(self, path: str) -> tuple[str, App] | None:
        for prefix, app in self.apps:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/") or prefix == "":
                return prefix, app
        return None


class _QuietServer(ThreadingHTTPServer):
    """A client that disconnects mid-request (a killed sync) is normal here, not an error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _conditional_get(request: Request, response: Response) -> None:
    """ETags on successful GETs, and 304 Not Modified when the client's copy is current."""
    if request.method != "GET" or response.status != 200:
        return
    etag = 'W/"' + hashlib.sha1(response.encoded()).hexdigest() + '"'
    response.headers.setdefault("ETag", etag)
    if request.headers.get("if-none-match") == response.headers["ETag"]:
        response.status, response.body = 304, None


def _handler_class(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class SandboxHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes on a kept-alive connection: without
        # TCP_NODELAY, Nagle's algorithm meets the client's delayed ACK and every
        # response stalls ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read counts
            pass

        def _serve(self) -> None:
            with sandbox._lock:
                sandbox.received.append((self.command, self.path))
            arrived = time.time()
            split = urlsplit(self.path)
            target = split.path + (f"?{split.query}" if split.query else "")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if split.path == CONTROL:
                self._send(_request_count(sandbox, parse_qs(split.query)))
                return
            fault = sandbox.faults.take(self.command, target, body)
            if fault is not None and self._apply_fault(fault, arrived, target):
                return
            response = self._answer(split.path, split.query, body)
            sandbox.record(arrived, self.command, target, response)
            self._send(response)

        def _answer(self, path: str, query: str, body: bytes) -> Response:
            mounted = sandbox.mount_for(path)
            if mounted is None:
                return Response(404, {"message": "Not Found"})
            prefix, app = mounted
            request = Request(
                method=self.command, path=path[len(prefix.rstrip("/")):] or "/", query=parse_qs(query),
                headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                base_url=f"http://{self.headers.get('Host', 'localhost')}{prefix.rstrip('/')}",
            )
            try:
                return sandbox.dispatch(request, prefix.rstrip("/"), app)
            except Exception as exc:  # a sandbox bug must show, not hang the client
                return Response(500, {"message": f"sandbox error: {exc!r}"})

        def _apply_fault(self, fault: Fault, arrived: float, target: str) -> bool:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.reset:
                sandbox.record(arrived, self.command, target, Response(0))
                self.close_connection = True
                self.connection.close()
                return True
            if fault.malformed:
                response = Response(200, b'{"truncated": [1, 2', {"Content-Type": "application/json"})
            elif fault.status is not None:
                response = Response(fault.status, fault.body if fault.body is not None
                                    else {"message": f"injected {fault.status}"}, dict(fault.headers))
            else:
                return False  # a pure delay: go on and answer normally
            sandbox.record(arrived, self.command, target, response)
            self._send(response)
            return True

        def _send(self, response: Response) -> None:
            data = response.encoded()
            self.send_response(response.status)
            headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return SandboxHandler


def _request_count(sandbox: Sandbox, query: dict[str, list[str]]) -> Response:
    """`GET /_sandbox/requests?at_least=N&timeout=S`: the number of requests answered so far,
    once it reaches N or S seconds passed (a long poll: no busy waiting in the test)."""
    try:
        at_least = int(query.get("at_least", ["0"])[-1])
        timeout = min(60.0, float(query.get("timeout", ["0"])[-1]))
    except ValueError:
        return Response(400, {"message": "at_least and timeout are numbers"})
    return Response(200, {"requests": sandbox.wait_for_requests(at_least, timeout)})


# ---------------------------------------------------------------------------- pagination

@dataclass(frozen=True)
class PageStyle:
    default_per_page: int = 30
    max_per_page: int = 100
    gitlab_headers: bool = False  # X-Page, X-Total, ... as GitLab sends them


GITHUB_PAGES = PageStyle(30, 100)
GITLAB_PAGES = PageStyle(20, 100, gitlab_headers=True)


def paginate(request: Request, items: Sequence[Any], style: PageStyle = GITHUB_PAGES,
             body: Callable[[list[Any]], Any] | None = None) -> Response:
    """One page of `items` with a Link header (first/prev/next/last) keeping every filter.

    `body` wraps the page when the API nests it (e.g. {"total_count": n, "workflow_runs": [...]}).
    """
    per_page = max(1, min(request.int_arg("per_page", style.default_per_page), style.max_per_page))
    page = max(1, request.int_arg("page", 1))
    pages = max(1, -(-len(items) // per_page))
    chunk = list(items[(page - 1) * per_page: page * per_page])
    headers = {"Link": _link_header(request, page, pages, per_page)} if pages > 1 else {}
    if style.gitlab_headers:
        headers.update(_gitlab_page_headers(page, pages, per_page, len(items)))
    return Response(200, body(chunk) if body else chunk, headers)


def page_url(request: Request, page: int, per_page: int) -> str:
    query = {k: v[-1] for k, v in request.query.items()}
    query.update(page=str(page), per_page=str(per_page))
    return f"{request.base_url}{request.path}?{urlencode(query)}"


def _link_header(request: Request, page: int, pages: int, per_page: int) -> str:
    links = []
    if page < pages:
        links += [(page + 1, "next"), (pages, "last")]
    if page > 1:
        links += [(1, "first"), (page - 1, "prev")]
    return ", ".join(f'<{page_url(request, n, per_page)}>; rel="{rel}"' for n, rel in links)


def _gitlab_page_headers(page: int, pages: int, per_page: int, total: int) -> dict[str, str]:
    return {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(total),
            "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else ""}


@contextmanager
def serving(apps: Sequence[tuple[str, App]]) -> Iterator[Sandbox]:
    """A started sandbox for a `with` block."""
    sandbox = Sandbox(apps).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
