"""The deployer's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

DEPLOYMENTS = Counter(
    "deployer_deployments_total", "Deployments by service and outcome.", ["service", "outcome"]
)
DEPLOY_DURATION = Histogram(
    "deployer_deploy_duration_seconds",
    "From helm start to the outcome.",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
QUEUE_DEPTH = Gauge("deployer_queue_depth", "Deployments waiting in a lane.")
BUSY_LANES = Gauge("deployer_busy_lanes", "Lanes running a Helm operation now.")
LEADER = Gauge("deployer_leader", "1 while this replica leads (drives the releases), else 0.")
HELD_LANES = Gauge("deployer_held_lanes", "Lanes whose lease this replica holds.")
EVENT_TO_START = Histogram(
    "deployer_event_to_start_seconds",
    "From receiving a pipeline event to starting its helm process.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DRIFTED_FIELDS = Gauge(
    "deployer_drifted_fields",
    "Fields of a release's live objects that differ from its manifest, at the last drift check.",
    ["service", "environment"],
)
PROMOTIONS = Counter(
    "deployer_promotions_total",
    "Promotions that ended, by service, the environment entered and how they ended.",
    ["service", "environment", "state"],
)
DORA_DEPLOYMENTS_PER_DAY = Gauge(
    "deployer_dora_deployments_per_day",
    "Successful deployments per day over the last 30 days (DORA deployment frequency).",
    ["service", "environment"],
)
DORA_LEAD_TIME = Gauge(
    "deployer_dora_lead_time_seconds",
    "Median commit-to-succeeded time over the last 30 days (DORA lead time for changes).",
    ["service", "environment"],
)
DORA_CHANGE_FAILURE_RATE = Gauge(
    "deployer_dora_change_failure_rate",
    "Share of changes that failed or needed a rollback, last 30 days (DORA change failure rate).",
    ["service", "environment"],
)
DORA_TIME_TO_RESTORE = Gauge(
    "deployer_dora_time_to_restore_seconds",
    "Median failure-to-restored time over the last 30 days (DORA time to restore).",
    ["service", "environment"],
)
DRIFT_CORRECTIONS = Counter(
    "deployer_drift_corrections_total",
    "Drift corrected by reapplying the release.",
    ["service", "environment"],
)
