"""The events the auth service publishes (through the transactional outbox)."""

from __future__ import annotations

from datetime import datetime

from kit.events import CloudEvent

SOURCE = "/services/auth"
USER_REGISTERED_SUBJECT = "auth.user.registered"
USER_REGISTERED_TYPE = "dev.flotilla.auth.user.registered.v1"


def user_registered(user_id: str, email: str, registered_at: datetime) -> CloudEvent:
    """``auth.user.registered``: a new account exists; the event's subject is the user id."""
    return CloudEvent.new(
        USER_REGISTERED_TYPE,
        source=SOURCE,
        subject=user_id,
        data={"user_id": user_id, "email": email, "registered_at": registered_at.isoformat()},
    )
