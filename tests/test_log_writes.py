"""Log lines are written once per event-loop turn, in order, and none is left behind."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import pytest

from posthorn import log


class Counting(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> Counting:
    out = Counting()
    log.setup("info", "mx.test", out)
    return out


def _lines(out: Counting) -> list[str]:
    return [line.rsplit(": ", 1)[1] for line in out.getvalue().splitlines()]


def test_lines_of_one_loop_turn_go_out_in_one_write(stream: Counting) -> None:
    logger = log.get("smtpd")

    async def go() -> None:
        for i in range(3):
            logger.info("line %d", i)
        assert stream.writes == 0  # still this turn
        await asyncio.sleep(0)
        assert stream.writes == 1
        assert _lines(stream) == ["line 0", "line 1", "line 2"]

    asyncio.run(go())


def test_a_thread_without_a_loop_writes_at_once_after_what_waits(stream: Counting) -> None:
    logger = log.get("queue")

    async def go() -> None:
        logger.info("from the loop")
        worker = threading.Thread(target=logger.warning, args=("from a thread",))
        worker.start()
        worker.join()
        assert _lines(stream) == ["from the loop", "from a thread"]

    asyncio.run(go())


def test_flush_writes_lines_a_stopped_loop_left(stream: Counting) -> None:
    logger = log.get("smtpd")

    async def last_words() -> None:
        logger.info("stopping")  # the loop ends before the turn that would write it

    loop = asyncio.new_event_loop()
    loop.run_until_complete(last_words())
    loop.close()
    log.flush()
    assert _lines(stream) == ["stopping"]


@pytest.fixture(autouse=True)
def _restore_handlers() -> object:
    root = logging.getLogger("posthorn")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved
