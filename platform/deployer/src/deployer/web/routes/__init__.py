"""The API's routes, one module per resource; :func:`deployer.web.api.api_router` joins them."""
