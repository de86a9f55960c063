"""High availability: leases that let replicas of the deployer share work without overlap."""
