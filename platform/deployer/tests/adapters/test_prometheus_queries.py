"""The PromQL the analyses send: windows PromQL can parse, whatever their length."""

from deployer.adapters.prometheus import window_increase


def test_a_window_is_whole_milliseconds_never_a_fraction_or_an_exponent() -> None:
    assert "offset 59848ms" in window_increase("x", 59.8484)
    assert "x[59848ms]" in window_increase("x", 59.8484)
    two_weeks = window_increase("x", 14 * 86400.0)
    assert "[1209600000ms]" in two_weeks
    assert "e+" not in two_weeks
