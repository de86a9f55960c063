"""Per-client token buckets: a steady rate with room for bursts."""

from __future__ import annotations

import itertools


class TokenBuckets:
    """``rate`` requests a second per client, and up to ``burst`` saved up while idle.

    Memory is bounded: past ``max_clients`` buckets, those idle long enough to be full again
    are forgotten (which changes nothing for their clients), then the least recently added if
    still needed.
    """

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_clients = max_clients
        # client -> [tokens, time of the last update]
        self._buckets: dict[str, list[float]] = {}

    def take(self, client: str, now: float) -> float:
        """Take a token for ``client`` at ``now`` (monotonic seconds).

        Returns 0.0 when the request may go ahead, else the seconds until a token is available.
        """
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._evict(now)
            self._buckets[client] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        refill_seconds = self.burst / self.rate
        self._buckets = {
            client: bucket
            for client, bucket in self._buckets.items()
            if now - bucket[1] < refill_seconds
        }
        # Leave room, so the next sweep is many new clients away (amortised O(1) per request).
        excess = len(self._buckets) - self._max_clients * 3 // 4
        if excess > 0:
            for client in list(itertools.islice(self._buckets, excess)):
                del self._buckets[client]
