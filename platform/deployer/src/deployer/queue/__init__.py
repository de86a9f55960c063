"""Queue: a lane per target (one operation per release at a time) and the approvals that hold deployments."""
