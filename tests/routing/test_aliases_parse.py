"""The aliases(5) grammar: parse_aliases and parse_targets on text."""

from __future__ import annotations

from posthorn.routing.aliases import (
    AddressTarget,
    FileTarget,
    IncludeTarget,
    LocalCopy,
    PipeTarget,
    parse_aliases,
    parse_targets,
)

TEXT = """\
# a comment, then a blank line

Staff: alice, bob,
    carol@example.org
  # a comment inside a continuation is skipped
    , dave
root: \\root, ops@example.org
"list name": alice
run: "|/usr/bin/prog -x 'a, b'", /var/mail/archive, :INCLUDE:/etc/lists/all
info@Example.NET: <ann@example.net>
"""


def test_grammar() -> None:
    table = parse_aliases(TEXT)
    assert table.problems == ()
    assert table.get("staff") is not None
    staff = table.entries["staff"]
    assert staff.line == 3
    assert staff.targets == (
        AddressTarget("alice"),
        AddressTarget("bob"),
        AddressTarget("carol@example.org"),
        AddressTarget("dave"),
    )
    assert table.entries["root"].targets == (LocalCopy("root"), AddressTarget("ops@example.org"))
    assert table.entries["list name"].targets == (AddressTarget("alice"),)
    assert table.entries["run"].targets == (
        PipeTarget("/usr/bin/prog -x 'a, b'"),
        FileTarget("/var/mail/archive"),
        IncludeTarget("/etc/lists/all"),
    )
    # A name with a domain is an alias of that one address (domain in A-label lower case).
    assert table.entries["info@example.net"].targets == (AddressTarget("ann@example.net"),)


def test_problems_are_reported_with_line_numbers_and_good_parts_kept() -> None:
    table = parse_aliases(
        "  orphan\n"
        "no colon here\n"
        "ok: alice\n"
        "ok: bob\n"
        "mixed: alice, bad@@address, :include:relative, |\n"
        "empty:\n"
        "bad name!: x\n"
    )
    assert [str(p) for p in table.problems] == [
        "line 1: continuation line without an alias before it",
        "line 2: missing ':' after the name: 'no colon here'",
        "line 4: duplicate alias 'ok' (first on line 3)",
        "line 5: bad address 'bad@@address': invalid local part 'bad@'",
        "line 5: include path must be absolute: ':include:relative'",
        "line 5: empty command after '|'",
        "line 6: alias 'empty' has no targets",
        "line 7: bad alias name 'bad name!'",
    ]
    assert table.entries["ok"].targets == (AddressTarget("alice"),)
    assert table.entries["mixed"].targets == (AddressTarget("alice"),)


def test_unbalanced_quote_in_command_is_a_problem() -> None:
    targets, problems = parse_targets('"|/bin/prog \'unclosed"', 9)
    assert targets == ()
    assert len(problems) == 1
    assert problems[0].line == 9
    assert "bad command" in problems[0].message
