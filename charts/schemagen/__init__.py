"""Generate every application chart's values.schema.json from one definition.

Helm validates values against each chart's own schema and cannot share a schema file between
charts, so the common part lives here once and each chart adds its own keys. Run, from the
repository's root,

    .venv/bin/python -m charts.schemagen           # rewrite charts/*/values.schema.json
    .venv/bin/python -m charts.schemagen --check   # exit 1 when a committed schema is stale

after changing a schema; the chart tests run --check.

The modules: ``discovery`` (which charts), ``builders`` (patterns and small builders),
``common`` (what every application chart shares), ``canary`` and ``deployer_chart`` (the values
the deployer reads), ``application`` (one application chart's whole schema), ``dependencies``
(the nats and postgres charts) and ``__main__`` (the command line).
"""
