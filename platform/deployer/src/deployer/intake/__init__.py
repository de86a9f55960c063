"""Intake: a deployment request checked before anything is queued (known service, immutable and
newer image, guardrails, the deploy policy, the chart's schema)."""
