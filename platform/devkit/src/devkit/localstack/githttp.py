"""The smart-HTTP git application that :mod:`devkit.localstack.gitserver` serves: git's own
``git http-backend`` (run once per request, as a CGI program) over the bare repositories of one
directory, behind optional HTTP basic auth, in a threading WSGI server.

git's backend, not a Python implementation of the protocol: fetches are served exactly as a git
server serves them (protocol v2, shallow clones, the capabilities go-git asks for, as Flux's
source-controller does), and pushes are checked as git checks them (a branch that moved since
the client read it, a non-fast-forward update when the repository sets
receive.denyNonFastForwards).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import shutil
import subprocess
import sys
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, BinaryIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REALM = "flotilla-git"
BACKEND_TIMEOUT = 300.0
# The request's CGI variables git http-backend reads, as the WSGI environment names them.
_PASSED = (
    "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "REMOTE_ADDR",
    "HTTP_CONTENT_ENCODING",
)  # fmt: skip


def git_binary() -> str:
    """The git CLI (its http-backend serves the repositories)."""
    found = shutil.which("git")
    if found is None:
        raise RuntimeError("git not found on PATH: the git server runs `git http-backend`")
    return found


def _dechunked(stream: BinaryIO) -> bytes:
    """A ``Transfer-Encoding: chunked`` request body (git sends one above http.postBuffer)."""
    body = bytearray()
    while True:
        size_line = stream.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += stream.read(size)
        stream.readline()  # the CRLF after the chunk


def _request_body(environ: WSGIEnvironment) -> bytes:
    stream: BinaryIO = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return _dechunked(stream)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return stream.read(length) if length > 0 else b""


def _cgi_response(output: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body of a CGI program's output."""
    separator = b"\r\n\r\n" if b"\r\n\r\n" in output else b"\n\n"
    head, _, body = output.partition(separator)
    status = "200 OK"
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = value.strip()
        elif name:
            headers.append((name.strip(), value.strip()))
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


def backend_application(root: str) -> WSGIApplication:
    """The WSGI application running ``git http-backend`` for the repositories under ``root``
    (``/<name>.git``; each must allow receive-pack, see GitServer.create_repository)."""
    git = git_binary()

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = _request_body(environ)
        env = {key: str(environ[key]) for key in _PASSED if environ.get(key)}
        env |= {
            "GIT_PROJECT_ROOT": root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "CONTENT_LENGTH": str(len(body)),
            "PATH": environ.get("PATH", "/usr/bin:/bin"),
        }
        if environ.get("REMOTE_USER"):
            env["REMOTE_USER"] = str(environ["REMOTE_USER"])
        if environ.get("HTTP_GIT_PROTOCOL"):
            env["GIT_PROTOCOL"] = str(environ["HTTP_GIT_PROTOCOL"])
        result = subprocess.run(
            [git, "http-backend"], input=body, env=env, capture_output=True,
            timeout=BACKEND_TIMEOUT, check=False,
        )  # fmt: skip
        if result.stderr:
            sys.stderr.write(result.stderr.decode(errors="replace"))
        status, headers, payload = _cgi_response(result.stdout)
        start_response(status, headers)
        return [payload]

    return application


def _authorized(environ: WSGIEnvironment, username: str, password: str) -> bool:
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, secret = given.partition(":")
    return hmac.compare_digest(user, username) and hmac.compare_digest(secret, password)


def with_basic_auth(app: WSGIApplication, username: str, password: str) -> WSGIApplication:
    """``app`` answering only requests with these basic-auth credentials (401 otherwise); it
    sees the user as REMOTE_USER."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if _authorized(environ, username, password):
            environ["REMOTE_USER"] = username
            return app(environ, start_response)
        body = b"authentication required\n"
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{REALM}"'),
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    return guarded


def git_application(root: str, credentials: tuple[str, str] | None = None) -> WSGIApplication:
    """The WSGI application serving the bare repositories under ``root``."""
    app = backend_application(root)
    return app if credentials is None else with_basic_auth(app, *credentials)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")
        sys.stderr.flush()


def serve(root: str, port: int, credentials: tuple[str, str] | None = None) -> None:
    """Serve ``root``'s repositories on 127.0.0.1:``port`` until the process is stopped."""
    server = make_server(
        "127.0.0.1",
        port,
        git_application(root, credentials),
        server_class=_ThreadingWSGIServer,
        handler_class=_LoggingHandler,
    )
    with server:
        server.serve_forever()
