from kit.identity import IDENTITY_HEADER, USER_HEADER, sign_identity, verify_identity

SECRET = b"shared-between-gateway-and-services"


def test_the_gateway_signature_is_accepted() -> None:
    headers = sign_identity(SECRET, "user-1", now=1_000)
    assert headers[USER_HEADER] == "user-1"
    assert verify_identity(SECRET, "user-1", headers[IDENTITY_HEADER], now=1_010)


def test_forged_swapped_or_stale_identities_are_refused() -> None:
    signature = sign_identity(SECRET, "user-1", now=1_000)[IDENTITY_HEADER]
    assert not verify_identity(SECRET, "user-2", signature, now=1_000)
    assert not verify_identity(b"another-secret", "user-1", signature, now=1_000)
    assert not verify_identity(SECRET, "user-1", signature, now=1_061)
    assert not verify_identity(SECRET, "user-1", "1000.deadbeef", now=1_000)
    assert not verify_identity(SECRET, "user-1", "garbage", now=1_000)
    assert not verify_identity(SECRET, "user-1", "\u00b2.deadbeef", now=1_000)  # a digit to isdigit
