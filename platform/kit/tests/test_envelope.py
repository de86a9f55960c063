import json

import pytest
from pydantic import BaseModel

from kit.events import CloudEvent, InvalidEventError, PermanentEventError


class OrderCreated(BaseModel):
    order_id: str
    amount_cents: int


def test_round_trip_keeps_attributes_and_extensions() -> None:
    event = CloudEvent.new(
        "dev.flotilla.order.created.v1",
        source="/services/order",
        data={"order_id": "o-1", "amount_cents": 1200},
        subject="o-1",
        pipelineid="run-42",
    )
    parsed = CloudEvent.from_bytes(event.to_bytes())
    assert parsed == event
    assert parsed.model_extra == {"pipelineid": "run-42"}
    assert parsed.data_as(OrderCreated).amount_cents == 1200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body"),
        (json.dumps({"specversion": "1.0", "source": "/x", "type": "t"}).encode(), "id"),
        (json.dumps({"specversion": "0.3", "id": "1", "source": "/x", "type": "t"}).encode(),
         "specversion"),
        (json.dumps({"specversion": "1.0", "id": "", "source": "/x", "type": "t"}).encode(), "id"),
        (json.dumps({"specversion": "1.0", "id": "1", "source": "/x", "type": "t",
                     "Bad-Name": 1}).encode(), "extension attribute"),
    ],
)  # fmt: skip
def test_invalid_events_name_the_wrong_attribute(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError, match="not a valid CloudEvent") as info:
        CloudEvent.from_bytes(body)
    assert reason in str(info.value)


def test_data_that_does_not_match_its_model_is_a_permanent_error() -> None:
    event = CloudEvent.new("t", source="/x", data={"order_id": "o-1"})
    with pytest.raises(PermanentEventError, match="amount_cents"):
        event.data_as(OrderCreated)
