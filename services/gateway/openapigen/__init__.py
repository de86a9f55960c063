"""The generator of the gateway's document of forwarded operations (forwarded_openapi.json).

Run from the repository's root: ``python -m services.gateway.openapigen [--check]``. It builds
each forwarded service's app as the service would, reads its OpenAPI document, and writes what
the gateway forwards of it (gateway_service.api.forwarded_document). Not part of any image.
"""
