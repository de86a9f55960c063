"""The signals that stop a supervisor of local processes (`make run`), taken without a handler.

The stop signals (SIGINT, SIGTERM, SIGHUP) and SIGCHLD are blocked in every thread, so the kernel
keeps them pending instead of interrupting the program; the main loop takes them with
sigtimedwait when it is ready to. No code ever runs in signal context: nothing can be interrupted
while it holds a lock, and a signal arriving at any moment, or twice, is simply the next one the
loop takes. SIGCHLD only wakes the loop early when a child exits.

Block them before starting any thread (threads inherit the mask) and any child (so does exec:
children must unblock them, as devkit.localstack.lifeline does).
"""

from __future__ import annotations

import signal

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
_WAITED = STOP_SIGNALS | {signal.SIGCHLD}


def hold_stop_signals() -> None:
    """Block the stop signals and SIGCHLD in this thread (and the threads and children it starts
    from now on) so that only ``next_stop_signal`` takes them."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)


def release_stop_signals() -> None:
    """Undo ``hold_stop_signals`` (signals still pending are delivered as usual)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WAITED)


def next_stop_signal(timeout: float) -> signal.Signals | None:
    """Wait up to ``timeout`` seconds for a stop signal and return it; None when the time is up or
    a child exited first (SIGCHLD), so that the caller looks at its children again."""
    received = signal.sigtimedwait(_WAITED, max(timeout, 0.0))
    if received is None or received.si_signo == signal.SIGCHLD:
        return None
    return signal.Signals(received.si_signo)


def exit_status(sig: signal.Signals) -> int:
    """The shell's exit status for a program ended by ``sig``: 128 + its number."""
    return 128 + int(sig)
