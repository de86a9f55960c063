"""The deployer command line: a client of the HTTP API."""
