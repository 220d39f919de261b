"""`posthorn explain ADDRESS`: how Posthorn would route mail to an address, step by step.

Builds the daemon's parts from the config (nothing is started, nothing is sent), hands
them to `posthorn.explain.explainer`, prints the explanation as text or JSON, and exits
with the verdict's sysexits code: 0 deliverable, 67 unknown local user, 68 no such
domain or host (or a null MX), 69 refused otherwise, 75 temporary (DNS) failure; 64
for an address that cannot be parsed.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from posthorn.cli.common import EX_USAGE, add_common, load_config, run


def cmd_explain(args: argparse.Namespace) -> int:
    from posthorn import daemon
    from posthorn.address import AddressError
    from posthorn.delivery.local import LocalDelivery
    from posthorn.explain import render
    from posthorn.explain.explainer import Explainer, parse_address
    from posthorn.routing.routes import Mailbox

    config = load_config(args)
    mta = daemon.build(config)
    local = mta.runner.transports[Mailbox]
    assert isinstance(local, LocalDelivery)
    assert mta.remote is not None
    try:
        address = parse_address(args.address, mta.router.primary_domain)
        sender_text = args.sender or f"{getpass.getuser()}@{config.server.hostname}"
        hostname = config.server.hostname
        sender = None if sender_text in ("<>", "") else parse_address(sender_text, hostname)
    except AddressError as exc:
        print(f"posthorn explain: {exc}", file=sys.stderr)
        return EX_USAGE
    profile = config.queue.retry + (
        " with queue.retry_delays" if config.queue.retry_delays else ""
    )
    explainer = Explainer(mta.router, local, mta.remote, mta.runner.policy, profile)
    explanation = run(lambda: explainer.explain(address, sender))
    print(render.to_json(explanation) if args.json else render.to_text(explanation), end="")
    return explanation.verdict.exit_code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = sub.add_parser(
        "explain",
        help="show how mail to an address would be routed",
        description="Show, step by step, how Posthorn would route mail to ADDRESS: local "
        "or remote, the aliases, lists and forward files applied, the [routes] entry, the "
        "DNS walk (CNAME chain, MX records in the order they are tried, each host's "
        "addresses; implicit or null MX), the TLS policy and the retry timeline. Nothing "
        "is sent. Exit status: 0 deliverable, 67 unknown user, 68 no such domain or host "
        "(or a null MX), 69 refused, 75 temporary DNS failure.",
    )
    add_common(explain)
    explain.add_argument("address", metavar="ADDRESS", help="recipient address (or local name)")
    explain.add_argument(
        "-f",
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="envelope sender ('<>' for none; default login@hostname): owner- aliases show",
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=cmd_explain)
