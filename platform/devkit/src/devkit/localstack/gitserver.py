"""A smart-HTTP git server on a reserved 127.0.0.1 port, serving the bare repositories of one
directory for fetch and push, with optional HTTP basic auth. It runs as its own process
(``python -m devkit.localstack.gitserver``), so a test's event loop never serves git; each
request runs ``git http-backend`` (the git CLI must be installed).

    server = GitServer(tmp_path / "git", credentials=("flux", "secret"))
    server.create_repository("flotilla")    # bare, HEAD -> refs/heads/main
    with server:
        url = server.url("flotilla")        # http://127.0.0.1:<port>/flotilla.git
        server.url("flotilla", with_credentials=True)  # for the git CLI

The application is in :mod:`devkit.localstack.githttp`. A push that is not a fast-forward is
refused (receive.denyNonFastForwards), forced or not, and so is one whose branch moved since the
client read it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from devkit.localstack.githttp import git_binary
from devkit.localstack.ports import free_port, wait_until_listening
from devkit.localstack.process import START_TIMEOUT_SECONDS, terminate

PASSWORD_ENV = "FLOTILLA_GIT_SERVER_PASSWORD"  # noqa: S105 - the variable's name
DEFAULT_BRANCH = "main"


class GitServer:
    """One git server process over the bare repositories ``<directory>/<name>.git``; its log
    is ``<directory>/git-server.log``."""

    def __init__(self, directory: Path, credentials: tuple[str, str] | None = None) -> None:
        self.directory = directory
        self.credentials = credentials
        self.port = free_port()
        self.log_file = directory / "git-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where the server answers, without credentials."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, repo_name: str, with_credentials: bool = False) -> str:
        """The clone URL of ``repo_name``; with the basic-auth credentials in it on request
        (what the git CLI needs, as no credential helper is set up)."""
        if with_credentials and self.credentials is not None:
            user, password = (quote(part, safe="") for part in self.credentials)
            return f"http://{user}:{password}@127.0.0.1:{self.port}/{repo_name}.git"
        return f"{self.base_url}/{repo_name}.git"

    def repository_path(self, repo_name: str) -> Path:
        """The bare repository's directory."""
        return self.directory / f"{repo_name}.git"

    def create_repository(self, repo_name: str) -> Path:
        """Create an empty bare repository whose default branch is ``main``, which takes pushes
        over HTTP (with or without credentials) but no non-fast-forward one; its path."""
        path = self.repository_path(repo_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        git = git_binary()
        commands = [
            ["init", "--quiet", "--bare", f"--initial-branch={DEFAULT_BRANCH}", str(path)],
            ["-C", str(path), "config", "http.receivepack", "true"],
            ["-C", str(path), "config", "receive.denyNonFastForwards", "true"],
        ]
        for command in commands:
            subprocess.run([git, *command], capture_output=True, text=True, check=True, timeout=30)
        return path

    def command(self) -> list[str]:
        """The server's command line (the password goes in its environment)."""
        command = [sys.executable, "-m", "devkit.localstack.gitserver"]
        command += ["--root", str(self.directory), "--port", str(self.port)]
        if self.credentials is not None:
            command += ["--username", self.credentials[0]]
        return command

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the server and wait until it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.credentials is not None:
            env[PASSWORD_ENV] = self.credentials[1]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        process = self._process
        try:
            wait_until_listening(
                process,
                self.port,
                timeout,
                lambda: f"the git server exited at start; its log:\n{self.logs()}",
            )
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server process this object started (by its PID) and wait for it."""
        if self._process is not None:
            terminate(self._process, grace=10)
        self._process = None

    def logs(self) -> str:
        """Everything the server logged so far (one line per request)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> GitServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the repositories of ``--root`` (the password, if any, from the environment)."""
    from devkit.localstack.githttp import serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", required=True, help="the directory of the bare repositories")
    parser.add_argument("--port", type=int, required=True, help="the port on 127.0.0.1")
    parser.add_argument("--username", help=f"require basic auth (password from ${PASSWORD_ENV})")
    args = parser.parse_args(argv)
    credentials = None
    if args.username:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            parser.error(f"--username needs the password in ${PASSWORD_ENV}")
        credentials = (args.username, password)
    serve(args.root, args.port, credentials)


if __name__ == "__main__":
    main()
