"""Queue ids: unique across the worker processes forked from one supervisor, and a
collision that still happens costs the client nothing: intake tries again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.queue.model import NewMessage
from posthorn.queue.sqlite import SqliteStore
from posthorn.queue.store import QueueIdTaken
from support.server import env


def test_a_forked_process_counts_from_its_own_start() -> None:
    """Workers are forked after the module is imported: each must draw its own counter
    start, or two of them count in step and their ids meet in one microsecond."""
    child = textwrap.dedent(
        """
        import os
        from posthorn.queue import model
        before = model.new_queue_id(1.0)[-3:]
        os.urandom = lambda n: bytes([0, 7])  # what the child will draw
        pid = os.fork()
        if pid == 0:
            print(model.new_queue_id(1.0)[-3:], flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print(before, model.new_queue_id(1.0)[-3:], flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, env=env(), timeout=60, check=True
    )
    child_line, parent_line = result.stdout.decode().splitlines()
    before, parent_next = parent_line.split()
    assert child_line == "007"  # drawn afresh in the child
    assert int(parent_next, 16) == (int(before, 16) + 1) % 4096  # the parent counts on


class _TakenOnce:
    """A store in which the first commit finds its queue id taken."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.refused: list[str] = []

    async def commit(self, message: NewMessage) -> None:
        if not self.refused:
            self.refused.append(message.qid)
            raise QueueIdTaken("UNIQUE constraint failed: messages.qid")
        await self.store.commit(message)


def test_intake_tries_again_with_new_ids_when_one_is_taken(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore(tmp_path / "queue.db")
        await store.open()
        try:
            taken = _TakenOnce(store)
            intake = Intake(taken, hostname="mx.test", postmaster_domain="mx.test")  # type: ignore[arg-type]
            envelope = Envelope(Address("a", "example.org"), (Recipient(Address("b", "mx.test")),))
            reply = await intake.submit(envelope, b"Subject: x\r\n\r\nbody\r\n", hold=True)
            assert reply.code == 250
            (queued,) = await store.list()
            assert reply.lines[0].endswith(queued.qid)
            assert taken.refused
            assert queued.qid != taken.refused[0]
            content = await store.content(queued.qid)
            assert content is not None
            assert f"id {queued.qid}".encode() in content  # the trace names the new id
        finally:
            await store.close()

    asyncio.run(run())
