"""The smart-HTTP git application that :mod:`devkit.localstack.gitserver` serves: dulwich's WSGI
git application over the bare repositories of one directory (fetch and push), behind optional
HTTP basic auth, in a threading WSGI server.

Pushes are checked the way git's own receive-pack checks them, which dulwich's alone does not:
an update whose old value is not the branch's current commit is refused ("stale info", e.g. a
push that raced another one between its ref advertisement and its pack), and so is one that is
not a fast-forward ("non-fast-forward", e.g. a forced push). Pushes are applied one at a time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import sys
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dulwich.errors import NotGitRepository
from dulwich.graph import can_fast_forward
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.server import Backend, BackendRepo, ReceivePackHandler
from dulwich.web import make_wsgi_chain

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REALM = "flotilla-git"
# A repository's URL path: /<name>.git, one segment (never anything outside the root).
_REPOSITORY_PATH = re.compile(r"/?([A-Za-z0-9][A-Za-z0-9._-]*\.git)/?")
# One push at a time in this server: the check of a ref's current value and its update are one
# step, so two pushes from the same commit cannot both succeed.
_PUSH_LOCK = threading.Lock()


class DirectoryBackend(Backend):
    """The bare repositories ``<root>/<name>.git``, by their URL path ``/<name>.git``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def open_repository(self, path: str | bytes) -> BackendRepo:
        """The repository at URL path ``path`` (the handlers pass bytes, the web layer str);
        NotGitRepository for any other path."""
        match = _REPOSITORY_PATH.fullmatch(os.fsdecode(path))
        directory = os.path.join(self.root, match.group(1)) if match else ""
        if not match or not os.path.isdir(directory):
            raise NotGitRepository(f"no repository {path!r} here")
        return Repo(directory)


def _fast_forward(repo: Any, old_sha: ObjectID, new_sha: ObjectID) -> bool:
    """Whether ``new_sha`` descends from ``old_sha`` (``repo``: the handler's BackendRepo)."""
    return can_fast_forward(repo, old_sha, new_sha)


class CheckedReceivePackHandler(ReceivePackHandler):
    """dulwich's receive-pack with git's checks on every ref update (see the module's doc)."""

    def handle(self) -> None:
        """Receive one push while holding the server's push lock."""
        with _PUSH_LOCK:
            super().handle()

    def _on_update(self, ref_name: Ref, old_sha: ObjectID, new_sha: ObjectID) -> bytes | None:
        zero = ObjectID(b"0" * len(old_sha))
        try:
            current = self.repo.refs[ref_name]
        except KeyError:
            current = zero
        if current != old_sha:
            return b"stale info"
        branch_update = old_sha != zero and new_sha != zero and ref_name.startswith(b"refs/heads/")
        if branch_update and not _fast_forward(self.repo, old_sha, new_sha):
            return b"non-fast-forward"
        return super()._on_update(ref_name, old_sha, new_sha)


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
    """``app`` answering only requests with these basic-auth credentials (401 otherwise)."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if _authorized(environ, username, password):
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
    """The WSGI application serving the bare repositories under ``root`` (``/<name>.git``)."""
    handlers: dict[bytes, Any] = {b"git-receive-pack": CheckedReceivePackHandler}
    app = make_wsgi_chain(DirectoryBackend(root), handlers=handlers)
    if credentials is None:
        return app
    return with_basic_auth(app, *credentials)


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
