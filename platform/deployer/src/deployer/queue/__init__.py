"""Queue: a lane per target (one operation per release at a time), admission into it, and the
approvals that hold deployments."""
