"""An aiosmtpd server whose handler writes each message to a file and fsyncs it: the
"durable accept" a minimal Python MTA would do. Run: python aiosmtpd_fsync.py PORT DIR."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP


class FsyncHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counter = itertools.count()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.directory / f"{os.getpid()}.{next(self.counter)}"
        data = envelope.original_content or envelope.content
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return "250 OK"


async def main(port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = FsyncHandler(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="aiosmtpd.bench"), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(main(int(sys.argv[1]), Path(sys.argv[2])))
