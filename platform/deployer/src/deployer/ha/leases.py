"""Leases over a NATS key-value bucket: one holder per name at a time, freed when not renewed.

The bucket keeps one value per key for ``ttl`` seconds (its stream's ``max_age``): a holder
renews its lease by writing the key again within ``ttl``; a holder that stops (crashed, cut off
from NATS) loses it when the key expires, and another replica may then acquire it. Every write
is a compare-and-set on the key's revision, and that revision is the fencing token: a holder
proves it still holds a lease by renewing it (``renew`` fails once anyone else wrote the key).

The value names the holder (its replica id and the URL of its API) and the acquisition's own
token, so that a renewal whose answer was lost is recognised as ours.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from kit.events.streams import raise_replicas

LEASES_BUCKET = "deployer-leases"
# JetStream's "wrong last sequence" error code (a compare-and-set that lost).
_WRONG_LAST_SEQUENCE = 10071
# The stream of a bucket exists already with another configuration.
_STREAM_NAME_IN_USE = 10058
_VALID_NAME = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")
# How often acquire retries when the key changes under it (freed, or taken over) meanwhile.
_ACQUIRE_ATTEMPTS = 3


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a replica's stable id, and the URL its HTTP API answers at (may be
    empty)."""

    replica: str
    url: str = ""

    def __post_init__(self) -> None:
        if not self.replica:
            raise ValueError("a lease holder needs a replica id: give each replica a stable one")


@dataclass(frozen=True)
class Lease:
    """A lease held: ``revision`` is the key's revision the holder last wrote (the fencing
    token); ``confirmed_at`` is the ``time.monotonic()`` at which the request that wrote it was
    sent, so the lease cannot expire before ``confirmed_at + ttl``."""

    name: str
    holder: Holder
    revision: int
    token: str
    confirmed_at: float


class LeaseLostError(Exception):
    """The lease is no longer ours: stop the work it guards; acquire it again to go on."""

    def __init__(self, name: str, message: str, holder: Holder | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.holder = holder

    @classmethod
    def taken(cls, name: str, holder: Holder | None) -> LeaseLostError:
        """The key moved on: ``holder`` holds it now (None: nobody, or unknown)."""
        if holder is None:
            now = "nobody holds it now (it expired or was released)"
        else:
            at = f" at {holder.url}" if holder.url else ""
            now = f"replica {holder.replica!r}{at} holds it now"
        return cls(
            name,
            f"lease {name!r} is lost: {now}; stop the work it guards and acquire it again "
            "to continue",
            holder,
        )


class LeaseUnconfirmedError(LeaseLostError):
    """NATS did not answer, so the lease could not be proved ours now. It may still be (the
    renewals go on until the lease's time runs out), but nothing it guards may be written."""


@dataclass(frozen=True)
class _Stored:
    holder: Holder
    token: str


def _encode(holder: Holder, token: str) -> bytes:
    return json.dumps({"replica": holder.replica, "url": holder.url, "token": token}).encode()


def _decode(value: bytes | None) -> _Stored | None:
    """The holder a value names; None for a value this module did not write."""
    try:
        data: Any = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("replica"), str):
        return None
    if not data["replica"]:
        return None
    return _Stored(Holder(data["replica"], str(data.get("url") or "")), str(data.get("token", "")))


def check_name(name: str) -> str:
    """``name`` when it can be a lease's key; raises ValueError saying what a name may hold."""
    if not _VALID_NAME.match(name):
        raise ValueError(
            f"lease name {name!r} is not a valid key: use letters, digits and - / _ =, in "
            "tokens separated by single dots (e.g. 'lane.production.order')"
        )
    return name


async def _bucket(js: JetStreamContext, name: str, ttl: float, replicas: int) -> KeyValue:
    """The bucket ``name``, created when missing, its ttl set to ``ttl`` when it differs, given
    ``replicas`` copies when it has fewer (NATS_STREAM_REPLICAS)."""
    config = KeyValueConfig(
        bucket=name, history=1, ttl=ttl, storage=StorageType.FILE, replicas=replicas
    )
    try:
        kv = await js.key_value(name)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(config=config)
        except BadRequestError as exc:
            # Another replica created it meanwhile, with another ttl: set ours below.
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise
            kv = await js.key_value(name)
    status = await kv.status()
    if status.ttl != ttl:
        # Replicas must agree on the ttl; the last one started (the newest settings) wins.
        stream = status.stream_info.config
        await js.update_stream(
            config=replace(
                stream, max_age=ttl, duplicate_window=min(stream.duplicate_window or ttl, ttl)
            )
        )
    await raise_replicas(js, f"KV_{name}", replicas)
    return kv


class LeaseBook:
    """Acquires, renews and releases named leases in one key-value bucket."""

    def __init__(self, kv: KeyValue, ttl_seconds: float) -> None:
        self._kv = kv
        self.ttl = ttl_seconds

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        *,
        ttl_seconds: float,
        replicas: int = 1,
        bucket: str = LEASES_BUCKET,
    ) -> LeaseBook:
        """The leases of ``bucket`` (created when missing: one value per key, on file, kept
        ``ttl_seconds``, on ``replicas`` NATS servers). A lease not renewed within
        ``ttl_seconds`` expires."""
        if ttl_seconds <= 0:
            raise ValueError(f"a lease's ttl must be positive, not {ttl_seconds} seconds")
        return cls(await _bucket(js, bucket, ttl_seconds, replicas), ttl_seconds)

    async def acquire(self, name: str, holder: Holder) -> Lease | None:
        """The lease ``name`` for ``holder``; None while another replica holds it.

        A lease held under the same replica id (this replica before a restart) is taken over
        at once rather than after its ttl: a Lease of it held before becomes stale (its
        ``renew`` raises LeaseLostError), so a replica holds one Lease per name at a time."""
        check_name(name)
        for _ in range(_ACQUIRE_ATTEMPTS):
            token = uuid.uuid4().hex
            value = _encode(holder, token)
            sent = time.monotonic()
            try:
                revision = await self._kv.create(name, value)
                return Lease(name, holder, revision, token, sent)
            # nats.py's create reads the key after a failed create: it may have expired since.
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                pass
            entry = await self._entry(name)
            if entry is None:
                continue  # freed since: create it again
            stored = _decode(entry.value)
            if stored is None or stored.holder.replica != holder.replica:
                return None
            sent = time.monotonic()
            try:
                revision = await self._kv.update(name, value, last=entry.revision)
                return Lease(name, holder, revision, token, sent)
            except KeyWrongLastSequenceError:
                continue
        return None

    async def renew(self, lease: Lease) -> Lease:
        """``lease`` written again, with its new revision: proof that it is still held now.
        Raises LeaseLostError when anyone else wrote the key since (or it expired)."""
        value = _encode(lease.holder, lease.token)
        revision = lease.revision
        for _ in range(2):
            sent = time.monotonic()
            try:
                written = await self._kv.update(lease.name, value, last=revision)
            except KeyWrongLastSequenceError:
                entry = await self._entry(lease.name)
                stored = _decode(entry.value) if entry is not None else None
                if entry is None or stored is None or stored.token != lease.token:
                    raise LeaseLostError.taken(
                        lease.name, stored.holder if stored else None
                    ) from None
                # Our own earlier renewal, whose answer was lost: renew from its revision.
                revision = entry.revision or 0
                continue
            return replace(lease, revision=written, confirmed_at=sent)
        raise LeaseLostError(
            lease.name,
            f"lease {lease.name!r} could not be renewed: its key keeps moving under this "
            "replica's own token (two renewals of one lease at once?); renew a lease from one "
            "task at a time, and acquire it again to continue",
            lease.holder,
        )

    async def release(self, lease: Lease) -> None:
        """Give ``lease`` up so another replica may acquire it at once; a lease lost already
        is left to its holder."""
        try:
            await self._kv.delete(lease.name, last=lease.revision)
        except APIError as exc:
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise

    async def holder(self, name: str) -> Holder | None:
        """Who holds the lease ``name`` now (None: nobody)."""
        entry = await self._entry(check_name(name))
        stored = _decode(entry.value) if entry is not None else None
        return stored.holder if stored is not None else None

    async def _entry(self, name: str) -> KeyValue.Entry | None:
        try:
            return await self._kv.get(name)
        except KeyNotFoundError:  # never written, expired, or released (deleted)
            return None
