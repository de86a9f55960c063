"""The Flotilla service chassis.

A service is its settings, routers and event handlers; everything else (logs, metrics, tracing,
health, graceful shutdown, the JetStream event bus, the database) comes from this package.
"""
