"""Report: deployment records and their events, service state, metrics."""
