"""Flotilla's development tooling, kept out of every image.

``devkit.localstack`` runs the platform's processes on this machine (`make run`, the demo, the
test stacks), ``devkit.testing`` holds the pytest fixtures and test helpers, and ``devkit.devrun``
is `make run`. The service chassis (``kit``) never imports this package; services and the
deployer do not depend on it, so their images do not contain it.
"""
