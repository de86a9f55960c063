"""The deployer's event contract: what CI publishes, what the deployer reports, the image rules."""
