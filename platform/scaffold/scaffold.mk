# make new-service name=<name> / make remove-service name=<name> (platform/scaffold/README.md).
# Included by the root Makefile, whose deps, UV and BIN it uses.

.PHONY: new-service remove-service

new-service: deps ## Scaffold a service with its chart, skaffold module, NATS user, CI entries: name=<name>
	@$(BIN)/python platform/scaffold/new_service.py new '$(name)' --uv '$(UV)'

remove-service: $(UV) ## Remove a service made by new-service and every registration of it: name=<name>
	@test -x $(BIN)/python || { echo "make remove-service: no $(BIN)/python; run make deps" >&2; exit 2; }
	@$(BIN)/python platform/scaffold/new_service.py remove '$(name)' --uv '$(UV)'
