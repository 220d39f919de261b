"""The composition root: config in, a running mail system out.

Owns: building the store, router, transports, runner, intake and listeners from one
resolved `Config`, starting them in order, and stopping them in reverse on SIGTERM or
SIGINT (listeners first, so that nothing new is accepted, then the runner, then the
store). Does not own any behaviour of the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from dataclasses import dataclass
from pathlib import Path

from posthorn import dns, log
from posthorn.config import Config
from posthorn.control import ControlServer
from posthorn.delivery.file import FileDelivery
from posthorn.delivery.local import LocalDelivery
from posthorn.delivery.pipe import PipeDelivery
from posthorn.delivery.remote import RemoteDelivery
from posthorn.intake import Intake
from posthorn.queue import schedule
from posthorn.queue.bouncer import Bouncer
from posthorn.queue.flush import Etrn
from posthorn.queue.runner import Runner, Transport
from posthorn.queue.sqlite import SqliteStore
from posthorn.queue.store import QueueStore
from posthorn.receive.listener import Listener
from posthorn.receive.session import SessionContext
from posthorn.routing.expand import Expander
from posthorn.routing.nexthop import TransportTable
from posthorn.routing.router import File, Mailbox, Mbox, Pipe, Remote, Router
from posthorn.smtp.extensions import Capabilities

__all__ = ["Mta", "build", "capabilities", "open_store", "serve"]

_log = log.get("master")


def open_store(config: Config) -> QueueStore:
    """The queue store named by config (the embedded SQLite store by default)."""
    return SqliteStore(Path(config.server.data_dir) / "queue" / "queue.db")


def capabilities(config: Config) -> Capabilities:
    """What the SMTP service advertises in EHLO."""
    return Capabilities(
        size=config.smtp.max_message_size,
        pipelining=True,
        eightbitmime=True,
        smtputf8=True,
        enhancedstatuscodes=True,
        chunking=True,
        dsn=True,
        etrn=True,
        help=True,
    )


@dataclass(slots=True)
class Mta:
    """The parts of a running Posthorn, wired together."""

    config: Config
    store: QueueStore
    router: Router
    runner: Runner
    intake: Intake
    listener: Listener
    remote: RemoteDelivery | None = None


def build(config: Config) -> Mta:
    hostname = config.server.hostname
    store = open_store(config)
    router = Router(config.local, config.aliases, data_dir=config.server.data_dir)
    local = LocalDelivery(
        config.local.maildir, config.server.data_dir, hostname, config.local.mbox
    )
    remote = RemoteDelivery(
        config.smtp_client,
        dns.MxResolver(dns.make_resolver(config.dns)),
        TransportTable(config.routes),
        hostname=hostname,
    )
    transports: dict[type, Transport] = {
        Mailbox: local,
        Mbox: local,
        Remote: remote,
        File: FileDelivery(router.accounts),
        Pipe: PipeDelivery(
            config.aliases.pipe_timeout, router.accounts, config.local.extension_delimiter
        ),
    }
    queue = config.queue
    policy = schedule.policy_from(
        queue.retry, queue.retry_delays, queue.max_queue_lifetime, queue.delay_warning
    )
    intake = Intake(
        store,
        hostname=hostname,
        postmaster_domain=router.primary_domain,
        max_received=config.smtp.max_received_headers,
        hold=config.server.hold,
        on_commit=lambda qid: runner.wake(qid),
        expander=Expander(router),
    )
    runner = Runner(
        store,
        router,
        transports,
        policy,
        owner=hostname,
        lease=queue.lease,
        concurrency=queue.delivery_concurrency,
        bouncer=Bouncer(intake, hostname, policy),
    )
    ctx = SessionContext(
        config=config,
        intake=intake,
        router=router,
        caps=capabilities(config),
        trusted_networks=tuple(
            ipaddress.ip_network(n, strict=False) for n in config.relay.trusted_networks
        ),
        etrn=Etrn(store, runner.wake),
    )
    return Mta(config, store, router, runner, intake, Listener(ctx), remote)


def _wake(mta: Mta, arg: str) -> str:
    mta.runner.wake()
    return "OK"


async def serve(config: Config, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT (or until cancelled)."""
    mta = build(config)
    await asyncio.to_thread(Path(config.server.data_dir).mkdir, parents=True, exist_ok=True)
    await mta.store.open()
    runner_task = asyncio.create_task(mta.runner.run(), name="runner")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    control = ControlServer(config.server.data_dir, {"WAKE": lambda arg: _wake(mta, arg)})
    try:
        await control.start()
        for address in config.server.listen:
            await mta.listener.start(address)
        _log.info("daemon started: data_dir=%s", config.server.data_dir)
        if ready is not None:
            ready.set()
        await stop.wait()
        _log.info("stopping")
    finally:
        await control.close()
        await mta.listener.close()
        await mta.runner.stop()
        runner_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner_task
        if mta.remote is not None:
            await mta.remote.close()
        await mta.store.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
