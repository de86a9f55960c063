"""A tiny service on the chassis, run as a real process by the chassis's own tests.

Its handler appends "start <id>" and "done <id>" to SAMPLE_JOURNAL and sleeps for the event's
``sleep`` seconds, so a test can send SIGTERM while it works.
"""

import asyncio
import os
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel

from kit.app import ServiceSpec
from kit.events import CloudEvent, Delivery, StreamSpec, Subscription
from kit.serve import serve

STREAM = StreamSpec(os.environ["SAMPLE_STREAM"], (os.environ["SAMPLE_SUBJECTS"],))
JOURNAL = Path(os.environ["SAMPLE_JOURNAL"])

router = APIRouter()


@router.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


class Item(BaseModel):
    name: str


@router.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


async def work(event: CloudEvent, delivery: Delivery) -> None:
    with JOURNAL.open("a") as journal:
        journal.write(f"start {event.id} {delivery.attempt}\n")
    await asyncio.sleep(float(event.data.get("sleep", 0)))
    with JOURNAL.open("a") as journal:
        journal.write(f"done {event.id} {delivery.attempt}\n")


SPEC = ServiceSpec(
    name="sample",
    routers=[router],
    streams=[STREAM],
    subscriptions=[Subscription("sample-work", STREAM, STREAM.subjects, work)],
)

if __name__ == "__main__":
    serve(SPEC)
