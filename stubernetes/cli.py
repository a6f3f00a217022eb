"""`stubernetes`: render a stack offline for review; name the URNs a reinstall needs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from stackconfig import ConfigError, StackConfig, load_stack_file
from stackconfig.warnings import stack_warnings
from stubernetes.render import render_stack
from stubernetes.urns import install_anchor_urn

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stubernetes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render",
        help="write every machine's Ignition (and Matchbox data) for review, offline",
        description="Render a stack offline. Secrets and PKI are stand-ins derived from --seed: "
        "the output is for review and diffing, never for deployment.",
    )
    render.add_argument("--stack-file", type=Path, required=True)
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--seed", default="stubernetes", help="seed of the stand-in material")
    urn = commands.add_parser(
        "urn",
        help="print the URN of a machine's install anchor, for `pulumi up --target-replace`",
        description="Replacing a machine's install anchor reinstalls that machine from scratch: "
        'pulumi up --target-replace "$(stubernetes urn --stack-file F --machine NAME)"',
    )
    urn.add_argument("--stack-file", type=Path, required=True)
    urn.add_argument("--machine", required=True)
    urn.add_argument(
        "--stack", help="the stack's name (default: from the file name, Pulumi.<stack>.yaml)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        loaded = load_stack_file(args.stack_file)
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    warnings = [str(w) for w in stack_warnings(loaded.config, loaded.secure_paths)]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.command == "urn":
        return _print_urn(loaded.config, args.stack_file, args.machine, args.stack)
    try:
        with _without_repeats(warnings):
            summary = render_stack(loaded, args.out, args.seed)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


class _DropRepeats(logging.Filter):
    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__()
        self.messages = frozenset(messages)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.messages


@contextmanager
def _without_repeats(warnings: Sequence[str]) -> Iterator[None]:
    """The program under mocks logs the same warnings again (its `pulumi.log.warn` goes to the
    mock engine's logger, the root logger): printed once already, they are not repeated."""
    repeats = _DropRepeats(warnings)
    root = logging.getLogger()
    root.addFilter(repeats)
    try:
        yield
    finally:
        root.removeFilter(repeats)


def _print_urn(stack: StackConfig, stack_file: Path, machine: str, name: str | None) -> int:
    if machine not in {m.name for m in stack.machines}:
        print(f"error: machine '{machine}': no such machine in {stack_file}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stack_name = name or stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    print(install_anchor_urn(stack, stack.machine(machine), stack_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
