"""`stubernetes`: render a stack offline for review."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stackconfig import ConfigError, load_stack_file
from stubernetes.render import render_stack

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
    try:
        summary = render_stack(loaded, args.out, args.seed)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
