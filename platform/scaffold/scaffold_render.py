"""A new service's files, rendered from the frozen templates in templates/: the service
(service/), its chart (chart/) and its skaffold module (skaffold-module.yaml.tmpl).

A template file ends in ``.tmpl`` (so no linter, type checker or test collector takes it for
code) and holds the placeholders of :func:`placeholders`. The chart's vendored flotilla-lib
(Chart.lock and charts/*.tgz) is not a template: it is the library as vendored into every chart,
the same bytes everywhere, copied from a chart that has it.
"""

from __future__ import annotations

import re
from pathlib import Path

from scaffold_common import TEMPLATES, ScaffoldError, Service

from kit import layout

SUFFIX = ".tmpl"
NAME = "__NAME__"


def placeholders(service: Service) -> dict[str, str]:
    """Each placeholder of the templates and what it stands for (the longest first)."""
    return {
        "__PACKAGE__": service.package,
        "__SNAKE__": service.snake,
        "__STREAM__": service.stream,
        NAME: service.name,
    }


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every placeholder of ``values`` replaced."""
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def substitute_keeping_columns(text: str, service: Service) -> str:
    """``text`` rendered for ``service``, with the comments after ``__NAME__`` kept in their
    column (the YAML files align their comments)."""
    shift = len(service.name) - len(NAME)

    def keep_column(match: re.Match[str]) -> str:
        return service.name + " " * max(1, len(match.group(1)) - shift) + "#"

    text = re.sub(rf"{NAME}( +)#", keep_column, text)
    return substitute(text, placeholders(service))


def render_tree(
    folder: Path, target: str, service: Service, keep_columns: bool
) -> dict[str, bytes]:
    """Every template under ``folder``, rendered, by its path under ``target``."""
    values = placeholders(service)
    files = {}
    for template in sorted(folder.rglob(f"*{SUFFIX}")):
        relative = substitute(template.relative_to(folder).as_posix(), values)
        text = template.read_text()
        text = (
            substitute_keeping_columns(text, service) if keep_columns else substitute(text, values)
        )
        files[f"{target}/{relative.removesuffix(SUFFIX)}"] = text.encode()
    return files


def service_files(service: Service) -> dict[str, bytes]:
    """services/<name>/: the package with its example resource, tests, pyproject and README."""
    return render_tree(TEMPLATES / "service", service.folder, service, keep_columns=False)


def skaffold_module(service: Service) -> str:
    """The service's module of skaffold.yaml (one YAML document, without its ``---``)."""
    return substitute_keeping_columns(
        (TEMPLATES / f"skaffold-module.yaml{SUFFIX}").read_text(), service
    )


def vendored_library(root: Path) -> Path:
    """A service chart that has flotilla-lib vendored (its Chart.lock and charts/*.tgz)."""
    for name in layout.service_names(root):
        chart = root / "charts" / name
        if (chart / "Chart.lock").is_file() and any((chart / "charts").glob("flotilla-lib-*.tgz")):
            return chart
    raise ScaffoldError(
        f"no chart under {root / 'charts'} has flotilla-lib vendored (Chart.lock and "
        "charts/flotilla-lib-*.tgz): run charts/vendor-lib.sh, then make new-service again"
    )


def chart_files(root: Path, service: Service) -> dict[str, bytes]:
    """charts/<name>/: the chart template rendered, with the vendored library as it is.

    values.schema.json is left to charts/schemagen; the vendored flotilla-lib tarball and
    Chart.lock are the same bytes in every chart (helm packages the library reproducibly).
    """
    files = render_tree(TEMPLATES / "chart", service.chart, service, keep_columns=True)
    library = vendored_library(root)
    for path in [library / "Chart.lock", *sorted((library / "charts").glob("flotilla-lib-*.tgz"))]:
        files[f"{service.chart}/{path.relative_to(library).as_posix()}"] = path.read_bytes()
    return files
