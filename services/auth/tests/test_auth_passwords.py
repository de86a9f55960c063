"""Password hashing: argon2id with the RFC 9106 parameters, decoys for unknown emails."""

from __future__ import annotations

from argon2 import PasswordHasher

from auth_service.infra.passwords import Passwords
from auth_service.settings import AuthSettings


async def test_the_default_hash_is_argon2id_with_rfc_9106_parameters() -> None:
    settings = AuthSettings()
    passwords = Passwords(
        PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
    )
    hashed = await passwords.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await passwords.verify(hashed, "correct horse battery staple")
    assert not await passwords.verify(hashed, "correct horse battery stapler")
    assert not passwords.needs_rehash(hashed)


async def test_cheaper_old_hashes_still_verify_and_ask_for_a_rehash() -> None:
    cheap = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    old_hash = cheap.hash("correct horse battery staple")
    passwords = Passwords()
    assert await passwords.verify(old_hash, "correct horse battery staple")
    assert passwords.needs_rehash(old_hash)


async def test_an_unknown_email_costs_a_verification_and_never_matches() -> None:
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    assert not await passwords.verify(None, "anything at all, really")
    assert not await passwords.verify("not-a-hash", "anything at all, really")
