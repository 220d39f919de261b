"""The composition root: config in, a running mail system out.

Owns: building the store, router, transports, runner, intake and listeners (plain SMTP,
submission with STARTTLS, implicit-TLS submission) from one resolved `Config`, with the
security parts they share (TLS context, password file, per-client limits, inbound checks,
DKIM signer), starting them in order, dropping root once the sockets are bound, and
stopping them in reverse on SIGTERM or SIGINT (listeners first, so that nothing new is
accepted, then the runner, then the store). Does not own any behaviour of the parts.

Raises `ConfigError` from `build` for settings that only make sense together (a TLS
listener without a certificate, a key that cannot be loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import signal
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path

from posthorn import dns, log
from posthorn.config import Config, ConfigError, password_file
from posthorn.control import ControlServer
from posthorn.delivery.file import FileDelivery
from posthorn.delivery.lmtp import LmtpDelivery, parse_lmtp_target
from posthorn.delivery.local import LocalDelivery
from posthorn.delivery.pipe import PipeDelivery
from posthorn.delivery.remote import RemoteDelivery
from posthorn.intake import Intake
from posthorn.mailauth.check import InboundChecker
from posthorn.mailauth.lookup import make_sync_resolver
from posthorn.mailauth.signing import DkimKeyError, DkimSigner
from posthorn.passwords import PasswordFile
from posthorn.privileges import PrivilegeError, drop_privileges
from posthorn.queue import schedule
from posthorn.queue.bouncer import Bouncer
from posthorn.queue.flush import Etrn
from posthorn.queue.runner import Runner, Transport
from posthorn.queue.sqlite import SqliteStore
from posthorn.queue.store import QueueStore
from posthorn.receive.context import SessionContext
from posthorn.receive.limits import ClientLimits
from posthorn.receive.listener import Listener
from posthorn.receive.tls import TlsConfigError, server_context
from posthorn.routing.expand import Expander
from posthorn.routing.nexthop import TransportTable
from posthorn.routing.router import File, Mailbox, Mbox, Pipe, Remote, Router
from posthorn.smtp.extensions import Capabilities

__all__ = ["Mta", "build", "capabilities", "node_name", "open_store", "serve"]

_log = log.get("master")


def node_name(config: Config) -> str:
    """This node's name: the owner of its queue leases (several nodes may share a queue)."""
    return config.cluster.node or config.server.hostname


def open_store(config: Config, owner: str = "") -> QueueStore:
    """The queue store named by config (the embedded SQLite store by default); `owner`
    names this process to the other nodes (default: the node name)."""
    if config.queue.store != "sqlite":
        # Imported here: a single node on SQLite never loads the PostgreSQL driver.
        from posthorn.queue.postgres import PostgresStore

        return PostgresStore(config.queue.store, node=owner or node_name(config))
    return SqliteStore(Path(config.server.data_dir) / "queue" / "queue.db")


def capabilities(config: Config, *, starttls: bool = False) -> Capabilities:
    """What the SMTP service advertises in EHLO (AUTH is added per session, under TLS)."""
    return Capabilities(
        starttls=starttls,
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
    # Submission listeners: (listener, addresses).
    submission: list[tuple[Listener, tuple[str, ...]]] = field(default_factory=list)
    lmtp: LmtpDelivery | None = None


def _tls_context(config: Config) -> ssl.SSLContext | None:
    try:
        context = server_context(config.tls)
    except TlsConfigError as exc:
        raise ConfigError(str(exc)) from exc
    if context is None and config.submission.tls_listen:
        raise ConfigError("submission.tls_listen needs tls.cert and tls.key")
    return context


def _signer(config: Config) -> DkimSigner | None:
    if not config.dkim.keys:
        return None
    try:
        return DkimSigner(config.dkim, config.server.data_dir)
    except DkimKeyError as exc:
        raise ConfigError(str(exc)) from exc


def _submission(
    ctx: SessionContext, tls: ssl.SSLContext | None
) -> list[tuple[Listener, tuple[str, ...]]]:
    """RFC 6409 and RFC 8314 listeners: the same service with AUTH required before MAIL."""
    sub = replace(ctx, require_auth=True)
    found: list[tuple[Listener, tuple[str, ...]]] = []
    if ctx.config.submission.listen:
        found.append((Listener(sub, tls=tls, kind="submission"), ctx.config.submission.listen))
    if ctx.config.submission.tls_listen:
        implicit = Listener(sub, tls=tls, implicit_tls=True, kind="submissions")
        found.append((implicit, ctx.config.submission.tls_listen))
    return found


def _transports(
    config: Config, router: Router
) -> tuple[dict[type, Transport], RemoteDelivery, LmtpDelivery | None]:
    """The transport of each kind of route, and the two that hold connections."""
    hostname = config.server.hostname
    local = LocalDelivery.from_config(config)
    lmtp = None
    if config.local.mailbox:
        # Local mailboxes live on a mailbox server: hand them over by LMTP.
        target = parse_lmtp_target(config.local.mailbox)
        lmtp = LmtpDelivery(target, config.smtp_client, hostname=hostname)
    remote = RemoteDelivery(
        config.smtp_client,
        dns.MxResolver(dns.make_resolver(config.dns)),
        TransportTable(config.routes),
        hostname=hostname,
    )
    transports: dict[type, Transport] = {
        # With a mailbox server (local.mailbox), every local mailbox is reached by LMTP.
        Mailbox: lmtp or local,
        Mbox: lmtp or local,
        Remote: remote,
        File: FileDelivery(router.accounts),
        Pipe: PipeDelivery(
            config.aliases.pipe_timeout, router.accounts, config.local.extension_delimiter
        ),
    }
    return transports, remote, lmtp


def _session_context(
    config: Config,
    store: QueueStore,
    router: Router,
    intake: Intake,
    runner: Runner,
    tls: ssl.SSLContext | None,
) -> SessionContext:
    """What every SMTP session shares: policy, password file, limits, inbound checks."""
    trusted = tuple(ipaddress.ip_network(n, strict=False) for n in config.relay.trusted_networks)
    checker = InboundChecker(
        config.mailauth,
        config.mailauth.authserv_id or config.server.hostname,
        make_sync_resolver(config.dns),
    )
    return SessionContext(
        config=config,
        intake=intake,
        router=router,
        caps=capabilities(config, starttls=tls is not None),
        trusted_networks=trusted,
        max_errors=config.limits.max_errors,
        passwords=PasswordFile(Path(password_file(config))),
        limits=ClientLimits(
            config.limits,
            config.auth,
            max_connections=config.server.max_connections,
            trusted=trusted,
        ),
        etrn=Etrn(store, runner.wake),
        checker=checker if checker.enabled else None,
    )


def build(config: Config, worker: int | None = None) -> Mta:
    """Wire the parts; `worker` is the index of this process among several (None: alone)."""
    hostname = config.server.hostname
    tls = _tls_context(config)
    # The queue lease owner: the node, and which of its worker processes.
    owner = node_name(config) if worker is None else f"{node_name(config)}/{worker}"
    store = open_store(config, owner)
    router = Router(config.local, config.aliases, data_dir=config.server.data_dir)
    transports, remote, lmtp = _transports(config, router)
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
        always_add_ids=config.smtp.always_add_missing_headers,
        on_commit=lambda qid: runner.wake(),
        expander=Expander(router),
        signer=_signer(config),
    )
    runner = Runner(
        store,
        router,
        transports,
        policy,
        owner=owner,
        lease=queue.lease,
        concurrency=queue.delivery_concurrency,
        bouncer=Bouncer(intake, hostname, policy),
    )
    ctx = _session_context(config, store, router, intake, runner, tls)
    watch = getattr(store, "watch", None)
    if watch is not None:
        # A shared store: wake this node's runner when another node makes mail due.
        watch(runner.wake)
    listener = Listener(ctx, tls=tls)
    submission = _submission(ctx, tls)
    return Mta(config, store, router, runner, intake, listener, remote, submission, lmtp)


def _wake(mta: Mta, arg: str) -> str:
    mta.runner.wake()
    return "OK"


def _settle_memory() -> None:
    """Everything built so far (modules, configuration, tables) lives as long as the
    process: out of the cyclic collector's sight (gc.freeze), its full collections no
    longer walk it; and young collections run less often, since a conversation makes
    many short-lived objects and few cycles. Measured: gc was 2% of the accept path."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def serve(
    config: Config, ready: asyncio.Event | None = None, worker: int | None = None
) -> None:
    """Run until SIGTERM or SIGINT (or until cancelled). One of several `worker`
    processes shares its ports with the others (SO_REUSEPORT); worker 0 (or a server
    alone) also answers the control socket."""
    mta = build(config, worker)
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
        if not worker:
            await control.start()
        await _listen(mta, shared=worker is not None)
        _log.info("daemon started: data_dir=%s", config.server.data_dir)
        _settle_memory()
        if ready is not None:
            ready.set()
        await stop.wait()
        _log.info("stopping")
    finally:
        if not worker:
            await control.close()
        await _stop(mta, runner_task)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def _listen(mta: Mta, *, shared: bool) -> None:
    """Bind every listener, then drop root: port 25 was the only reason for it."""
    server = mta.config.server
    for address in server.listen:
        await mta.listener.start(address, reuse_port=shared)
    for listener, addresses in mta.submission:
        for address in addresses:
            await listener.start(address, reuse_port=shared)
    try:
        dropped = drop_privileges(server.user, server.group, server.data_dir)
    except PrivilegeError as exc:
        raise ConfigError(str(exc)) from exc
    if dropped:
        _log.info("running as user %s", server.user)


async def _stop(mta: Mta, runner_task: asyncio.Task[None]) -> None:
    """Stop in reverse: the listeners (nothing new is accepted), the runner, the
    transports' idle connections, the store."""
    await mta.listener.close()
    for listener, _ in mta.submission:
        await listener.close()
    await mta.runner.stop()
    runner_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner_task
    if mta.remote is not None:
        await mta.remote.close()
    if mta.lmtp is not None:
        await mta.lmtp.close()
    await mta.store.close()
