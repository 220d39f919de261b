"""Alias expansion on a real Router over real files: limits, owners, includes, grouping."""

from __future__ import annotations

from pathlib import Path

import pytest

from posthorn.address import Address
from posthorn.config import AliasesConfig, LocalConfig
from posthorn.envelope import Recipient
from posthorn.routing.expand import Expander, ExpansionError, expand_recipients, group
from posthorn.routing.router import File, Refused, Router

ANN = Address("ann", "example.org")


def router(tmp_path: Path, aliases: str, **policy: object) -> Router:
    path = tmp_path / "aliases"
    path.write_text(aliases)
    local = LocalConfig(domains=("mx.test",), users=("alice", "bob"), accept_any_local_user=False)
    return Router(local, AliasesConfig(file=str(path), **policy), data_dir=str(tmp_path))  # type: ignore[arg-type]


def finals(
    r: Router, *to: str, sender: Address | None = ANN, delivered: frozenset[str] = frozenset()
):  # type: ignore[no-untyped-def]
    rcpts = [Recipient(Address.parse(t)) for t in to]
    return expand_recipients(r, rcpts, sender, delivered)


def test_depth_limit(tmp_path: Path) -> None:
    r = router(tmp_path, "a1: a2\na2: a3\na3: a4\na4: alice\n", max_depth=3)
    (final,) = finals(r, "a1@mx.test")
    assert final.recipient.address == Address("a4", "mx.test")
    assert isinstance(final.recipient.route, Refused)
    assert str(final.recipient.route.reply) == "554 5.4.6 <a4@mx.test>: alias nesting too deep"
    ok = router(tmp_path, "a1: a2\na2: a3\na3: a4\na4: alice\n", max_depth=4)
    assert [f.recipient.address.local for f in finals(ok, "a1@mx.test")] == ["alice"]


def test_owner_sender_orcpt_and_chain(tmp_path: Path) -> None:
    r = router(tmp_path, "list: alice, bob+x\nowner-list: bob\n")
    found = finals(r, "list+tag@mx.test")
    assert [str(f.recipient.address) for f in found] == ["alice@mx.test", "bob+x@mx.test"]
    assert {f.sender for f in found} == {Address("owner-list", "mx.test")}
    assert {f.recipient.orcpt for f in found} == {"rfc822;list+tag@mx.test"}
    assert {f.chain for f in found} == {(Address("list+tag", "mx.test"),)}
    # A bounce (null sender) stays a bounce: owner-LIST does not replace <>.
    assert {f.sender for f in finals(r, "list@mx.test", sender=None)} == {None}


def test_includes_loops_and_empty_lists(tmp_path: Path) -> None:
    loop = tmp_path / "loop.list"
    loop.write_text(f"alice\n:include:{loop}\n")
    empty = tmp_path / "empty.list"
    empty.write_text("# nobody yet\n")
    r = router(
        tmp_path,
        f"looped: :include:{loop}\nnone: :include:{empty}\n"
        f"broken: :include:{tmp_path / 'missing'}\narchive: /tmp/x\n",
        allow_files=True,
    )
    found = finals(r, "looped@mx.test", "none@mx.test", "archive@mx.test")
    routes = [(str(f.recipient.address), f.recipient.route) for f in found]
    assert routes[0] == ("alice@mx.test", None)
    assert isinstance(routes[1][1], Refused)
    assert "include loop" in str(routes[1][1].reply)
    assert routes[2][0] == "none@mx.test"
    assert str(routes[2][1].reply) == "550 5.1.1 <none@mx.test>: empty list"  # type: ignore[union-attr]
    assert routes[3] == ("archive@mx.test", File("/tmp/x", "nobody"))
    with pytest.raises(ExpansionError, match="missing"):
        finals(r, "broken@mx.test")


def test_delivered_to_stops_redirects_only(tmp_path: Path) -> None:
    r = router(tmp_path, "list: alice\n")
    seen = frozenset({"list@mx.test", "bob@mx.test"})
    a, b = finals(r, "list@mx.test", "bob@mx.test", delivered=seen)
    assert isinstance(a.recipient.route, Refused)
    assert a.recipient.route.reply.esc == "5.4.6"
    # A plain mailbox is left to the delivery agent, which bounces it (554 5.4.6).
    assert b.recipient == Recipient(Address("bob", "mx.test"))


def test_expander_groups_copies_by_sender_and_chain(tmp_path: Path) -> None:
    r = router(tmp_path, "list: alice, bob\nowner-list: alice\nsolo: bob\n")
    copies = Expander(r)(
        ANN,
        [Recipient(Address.parse(a)) for a in ("alice@mx.test", "list@mx.test", "solo@mx.test")],
        b"Delivered-To: someone@else.test\r\n",
    )
    assert [(c.sender, c.chain, [str(x.address) for x in c.recipients]) for c in copies] == [
        (ANN, (), ["alice@mx.test"]),
        (Address("owner-list", "mx.test"), (Address("list", "mx.test"),), ["bob@mx.test"]),
    ]
    # bob via `solo` is a duplicate of bob via `list`: the first path wins.
    assert len(group(finals(r, "solo@mx.test"))) == 1


def _forward(tmp_path: Path, user: str, text: str) -> None:
    path = tmp_path / "mail" / user / "forward"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    path.chmod(0o600)


@pytest.mark.parametrize("offsite", [True, False])
def test_forward_offsite_governs_forward_files_not_aliases(tmp_path: Path, offsite: bool) -> None:
    listed = tmp_path / "friends.list"
    listed.write_text("pal@remote.test\n")
    listed.chmod(0o600)
    _forward(tmp_path, "alice", f"bob, friend@remote.test\n:include:{listed}\nout\n")
    r = router(tmp_path, "out: far@remote.test\nteam: alice\n", forward_offsite=offsite)
    found = [(str(f.recipient.address), f.chain) for f in finals(r, "team@mx.test")]
    team, alice = Address("team", "mx.test"), Address("alice", "mx.test")
    # The admin's alias `out` (reached from the forward file) may always go off-site.
    via_out = ("far@remote.test", (team, alice, Address("out", "mx.test")))
    if offsite:
        assert found == [
            ("bob@mx.test", (team, alice)),
            ("friend@remote.test", (team, alice)),
            ("pal@remote.test", (team, alice)),
            via_out,
        ]
    else:
        # Each off-site line (here and in the include file) becomes alice's own mailbox,
        # reached through the alias as it would be without a forward file; once.
        assert found == [("bob@mx.test", (team, alice)), ("alice@mx.test", (team,)), via_out]
