"""The event bus over NATS JetStream: CloudEvents in, CloudEvents out, nothing lost."""

from kit.events.bus import EventBus, PublishDeniedError
from kit.events.consumer import Delivery, Subscription
from kit.events.envelope import CloudEvent, InvalidEventError
from kit.events.errors import PermanentEventError
from kit.events.streams import StreamSpec

__all__ = [
    "CloudEvent",
    "Delivery",
    "EventBus",
    "InvalidEventError",
    "PermanentEventError",
    "PublishDeniedError",
    "StreamSpec",
    "Subscription",
]
