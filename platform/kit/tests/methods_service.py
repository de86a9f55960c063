"""A tiny service on the chassis for the HTTP method tests: two routes share /items.

Run as a script (``python methods_service.py``) on SERVICE_PORT, without NATS or a database.
"""

from fastapi import APIRouter

from kit.app import ServiceSpec
from kit.serve import serve

router = APIRouter(prefix="/items")


@router.get("")
async def list_items() -> dict[str, list[int]]:
    """Every item."""
    return {"items": [1, 2, 3]}


@router.post("", status_code=201)
async def add_item() -> dict[str, int]:
    """A new item."""
    return {"item_id": 4}


@router.get("/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    """One item."""
    return {"item_id": item_id}


if __name__ == "__main__":
    serve(ServiceSpec(name="methods", routers=[router], uses_nats=False))
