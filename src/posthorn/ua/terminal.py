"""The terminal: the only place in `ua/` that prompts, reads what is typed, or prints.

Owns: standard input and output (or the streams a test gives), prompts (echoing the
answer when input is not a terminal, so that the output reads as a session), the body
typed until end of input or a line holding a single `.` (as mail(1) reads it), and
output in the terminal's charset where what cannot be shown becomes '?' rather than a
traceback. Does not own what is asked or shown (`shell.py`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

__all__ = ["Terminal"]


class Terminal:
    """Standard input and output, or the streams a test gives."""

    def __init__(
        self, stdin: TextIO | None = None, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        for stream in (self.stdin, self.out, self.err):
            # Text the terminal's charset cannot show (or bytes that are not in it, on
            # input) becomes '?' or U+FFFD, never a traceback.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")

    @property
    def interactive(self) -> bool:
        return self.stdin.isatty()

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def lines(self, texts: Iterable[str]) -> None:
        """Many lines in one write (a listing of thousands)."""
        self.out.write("".join(f"{text}\n" for text in texts))
        self.out.flush()

    def error(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def prompt(self, text: str) -> str:
        self.out.write(text)
        self.out.flush()
        answer = self.stdin.readline().rstrip("\r\n")
        if not self.interactive:
            # No terminal echoed what was typed: show it, so the output reads as a session.
            self.out.write(answer + "\n")
        return answer

    def read_body(self) -> str:
        """Lines until end of input or a line holding a single '.' (as mail(1) reads)."""
        lines = []
        for line in self.stdin:
            text = line.rstrip("\r\n")
            if text == ".":
                break
            lines.append(text)
        if self.interactive:
            self.line("EOT")
        return "\n".join(lines) + ("\n" if lines else "")
