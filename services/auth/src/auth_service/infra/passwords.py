"""Password hashing with argon2id, off the event loop and bounded in parallelism."""

from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hashes and verifies passwords; each hash costs tens of MiB and most of a core."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Bound memory and CPU: at most one hash per core at a time.
        self._slots = asyncio.Semaphore(os.cpu_count() or 1)
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password``."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches ``password_hash``.

        With no hash (an unknown email) a decoy hash is verified instead, so the answer takes
        as long as for a known email and does not reveal which emails have accounts.
        """
        if password_hash is None:
            if self._decoy is None:
                self._decoy = await self.hash(os.urandom(16).hex())
            await self._check(self._decoy, password)
            return False
        return await self._check(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)

    async def _check(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, password_hash, password)
            except (VerificationError, InvalidHashError):
                return False
