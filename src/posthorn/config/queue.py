"""The settings of the queue: [queue] (the store, retry profile and lifetimes, leases,
delivery concurrency) and [cluster] (this node's name among nodes sharing a queue).

Owns: each of those settings' name, type, default, one-line documentation and range
check. Does not own the retry arithmetic (`queue/schedule.py`) or the stores.

Raises `ValueError` from a section's constructor for a value out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

from posthorn.config.fields import choice, positive, setting

__all__ = ["ClusterConfig", "QueueConfig"]


@dataclass(frozen=True, slots=True)
class QueueConfig:
    store: str = setting(
        "sqlite",
        "Queue store: 'sqlite' (under data_dir) or 'postgresql://USER@HOST/DB' (shared by nodes).",
        secret=True,
    )
    retry: str = setting("rfc1123", "Retry profile: 'rfc1123' or 'fast'.")
    lease: float = setting(600.0, "Seconds a claimed message is reserved for one delivery run.")
    delivery_concurrency: int = setting(100, "Messages being delivered at the same time.")
    retry_delays: tuple[float, ...] = setting(
        (), "Explicit retry delays in seconds (the last repeats); empty = the retry profile's."
    )
    max_queue_lifetime: float = setting(
        0.0, "Seconds after arrival to give up and bounce; 0 = the retry profile's."
    )
    delay_warning: float = setting(
        14400.0, "Seconds after arrival to send a delay DSN (Action: delayed); 0 = never."
    )

    def __post_init__(self) -> None:
        choice("queue", "retry", self.retry, ("rfc1123", "fast"))
        for delay in self.retry_delays:
            positive("queue", "retry_delays", delay)
        positive("queue", "max_queue_lifetime", self.max_queue_lifetime, zero=True)
        positive("queue", "delay_warning", self.delay_warning, zero=True)
        positive("queue", "lease", self.lease)
        positive("queue", "delivery_concurrency", self.delivery_concurrency)
        if self.store != "sqlite" and not self.store.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"queue.store must be 'sqlite' or a postgresql:// URL; got {self.store!r}"
            )


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    node: str = setting(
        "", "This node's name among nodes sharing a queue (its lease owner); '' = the host name."
    )
