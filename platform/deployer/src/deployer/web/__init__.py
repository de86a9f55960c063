"""Web: the HTTP API, its token auth and the dashboard."""
