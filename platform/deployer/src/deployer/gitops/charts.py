"""The charts a gitops repository carries, each copy named by its content.

Flux rebuilds a chart from git only when its version changes, and upgrades a release only when
the chart's version or the values change. A copy whose version carries the digest of the chart's
files (``0.1.0+3f2a9c1d4e5b``) in a folder of that name changes exactly when the chart does, so
a chart edited without a version bump still rolls out, and an environment keeps the chart it
runs while another moves on.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deployer.gitops.layout import CHARTS

_VERSION_LINE = re.compile(r"^version:\s*['\"]?([^'\"\s#]+)['\"]?", re.MULTILINE)


@dataclass(frozen=True)
class ChartCopy:
    """A chart copied for the repository: where it is on disk and its folder there."""

    local: Path
    folder: PurePosixPath
    version: str


def chart_digest(chart_dir: Path) -> str:
    """The digest of every file of ``chart_dir`` (their paths and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(chart_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


class ChartCopies:
    """Copies of the deployer's charts under ``directory``, made once per content."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def prepare(self, chart_dir: Path) -> ChartCopy:
        """The copy of ``chart_dir`` with its version suffixed by its digest."""
        text = (chart_dir / "Chart.yaml").read_text()
        found = _VERSION_LINE.search(text)
        if found is None:
            raise ValueError(f"{chart_dir / 'Chart.yaml'} has no version")
        base = found.group(1).split("+", 1)[0]
        short = chart_digest(chart_dir)[:12]
        name = f"{base}-{short}"
        local = self._directory / chart_dir.name / name
        if not local.is_dir():
            local.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=".copy-"))
            shutil.copytree(chart_dir, staging, dirs_exist_ok=True)
            chart_yaml = staging / "Chart.yaml"
            chart_yaml.write_text(_VERSION_LINE.sub(f"version: {base}+{short}", text, count=1))
            try:
                staging.rename(local)
            except OSError:  # made meanwhile by another deployment of the same chart
                shutil.rmtree(staging, ignore_errors=True)
        return ChartCopy(local, CHARTS / chart_dir.name / name, f"{base}+{short}")
