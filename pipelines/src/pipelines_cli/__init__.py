"""Flotilla's CI logic as a CLI: which services changed, image tags, builds, deploy events."""
