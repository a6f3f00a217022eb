"""`stubernetes`: check and render a stack offline, and the helpers a first `pulumi up` needs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pulumi

from ignition.checked_stack import checked_stack_config
from stackconfig import ConfigError, LoadedStack, StackConfig
from stackconfig.stackfile import read_stack_file
from stackconfig.warnings import stack_warnings
from stubernetes.assets import DEFAULT_ASSETS_PATH, assets_text
from stubernetes.certs import instructions, make_certificates
from stubernetes.render import Render, render_files, render_stack
from stubernetes.render_outputs import previous_outputs, refusals
from stubernetes.resources import check_text, resource_tree
from stubernetes.urns import install_anchor_urn

EXIT_BAD_INPUT = 2
STACK_FILE_HELP = "the stack file, stacks/Pulumi.<stack>.yaml, as `pulumi config set` writes it"
SEED_HELP = (
    "seed of the stand-in PKI, tokens and secure values (default: %(default)s); "
    "the same seed gives byte-identical output"
)


def version() -> str:
    try:
        return metadata.version("stubernetes")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stubernetes",
        description=__doc__,
        epilog="Run `stubernetes <command> --help` for a command's options.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    check = commands.add_parser(
        "check",
        help="validate a stack as render does, and write nothing",
        description="Validate a stack file as `render` does (the stack config, then the Pulumi "
        "program run under mocks, every machine's Ignition checked) and write nothing. "
        "Exit status 2 on bad input, one line per problem.",
    )
    check.add_argument("--stack-file", type=Path, required=True, help=STACK_FILE_HELP)
    check.add_argument("--seed", default="stubernetes", help=SEED_HELP)
    check.add_argument(
        "--resources",
        action="store_true",
        help="also list every resource the program registers, by parent: what "
        "`pulumi preview` shows to create on a new stack",
    )

    render = commands.add_parser(
        "render",
        help="write every machine's Ignition, files and summary (and Matchbox data) for review",
        description="Render a stack offline. Secrets and PKI are stand-ins derived from --seed: "
        "the output is for review and diffing, never for deployment.",
    )
    render.add_argument("--stack-file", type=Path, required=True, help=STACK_FILE_HELP)
    render.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the folder to write; replaced whole, so it must be absent, empty or an earlier "
        "render, whose outputs.json is then the stack's previous state: removals it would "
        "refuse are refused here, and the earlier render is left as it was",
    )
    render.add_argument("--seed", default="stubernetes", help=SEED_HELP)
    render.add_argument(
        "--cluster-exists",
        action="store_true",
        help="render the stage after the first update that saw the cluster answer: the "
        "founding controller's Ignition is a join with a certificate key, no CA key in any "
        "(default: a new stack's first update)",
    )

    urn = commands.add_parser(
        "urn",
        help="print the URN of a machine's install anchor, for `pulumi up --replace`",
        description="Replacing a machine's install anchor reinstalls that machine from scratch: "
        'pulumi up --replace "$(stubernetes urn --stack-file F --machine NAME)" '
        "(not --target-replace, which replaces the anchor alone)",
    )
    urn.add_argument("--stack-file", type=Path, required=True, help=STACK_FILE_HELP)
    urn.add_argument("--machine", required=True, help="the machine's name (its key in machines)")
    urn.add_argument(
        "--stack", help="the stack's name (default: from the file name, Pulumi.<stack>.yaml)"
    )

    assets = commands.add_parser(
        "assets",
        help="list the Fedora CoreOS files cachedInstall serves from Matchbox's /assets",
        description="Print which Fedora CoreOS files go where under Matchbox's -assets-path for "
        "os.cachedInstall, with the URLs they come from and the commands to fetch them. The "
        "names follow the stack's pinned os.version.",
    )
    assets.add_argument("--stack-file", type=Path, required=True, help=STACK_FILE_HELP)
    assets.add_argument(
        "--assets-path",
        default=DEFAULT_ASSETS_PATH,
        help="Matchbox's -assets-path on its host (default: %(default)s, Matchbox's default)",
    )

    certs = commands.add_parser(
        "matchbox-certs",
        help="write a CA and the TLS certificates of Matchbox's gRPC API and of the program",
        description="Write ca.crt/ca.key, server.crt/server.key (Matchbox's gRPC API) and "
        "client.crt/client.key (the program's), and print the Matchbox flags and the "
        "`pulumi config set --secret` lines that use them. Refuses to overwrite any of them.",
    )
    certs.add_argument("--out", type=Path, required=True, help="the folder to write them to")
    certs.add_argument(
        "--server",
        action="append",
        required=True,
        metavar="NAME_OR_IP",
        help="a DNS name or IP address the program reaches Matchbox's gRPC API at (the host "
        "of matchbox.rpcEndpoint); repeat for several",
    )
    certs.add_argument(
        "--days",
        type=int,
        default=3650,
        help="how long the CA and both certificates are valid (default: %(default)s)",
    )
    return parser


def _load(stack_file: Path) -> LoadedStack | None:
    """The stack file read and checked as the program checks it (secrets given in plain text,
    snippets that collide with the program's own files included), or None once every problem
    is printed: before anything is rendered or written."""
    try:
        read = read_stack_file(stack_file)
        config = checked_stack_config(read.values, read.secure_paths, read.yaml_texts)
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return LoadedStack(config, read.values, read.secure_paths)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "matchbox-certs":
        return _matchbox_certs(args.out, args.server, args.days)
    loaded = _load(args.stack_file)
    if loaded is None:
        return EXIT_BAD_INPUT
    warnings = [str(w) for w in stack_warnings(loaded.config)]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.command == "urn":
        return _print_urn(loaded.config, args.stack_file, args.machine, args.stack)
    if args.command == "assets":
        print(assets_text(loaded.config, args.assets_path))
        return 0
    try:
        with _without_repeats(warnings):
            if args.command == "check":
                render = render_files(loaded, args.seed)
                print(_check_output(args.stack_file, render, args.resources))
            else:
                return _render(loaded, args.out, args.seed, args.cluster_exists)
    except (ValueError, OSError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _render(loaded: LoadedStack, out: Path, seed: str, cluster_exists: bool) -> int:
    """Render into `out`, an earlier render's outputs there taken as the previous state: a
    refused update is bad input, and the earlier render stays as it was. `cluster_exists`
    adds what an update that saw the cluster answer records (the second stage)."""
    try:
        previous = previous_outputs(out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    refused = refusals(loaded.config, previous)
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    if refused:
        return EXIT_BAD_INPUT
    print(render_stack(loaded, out, seed, previous, cluster_exists))
    return 0


def _check_output(stack_file: Path, render: Render, resources: bool) -> str:
    text = check_text(stack_file, render)
    if resources:
        text += "\n\n" + resource_tree(render.registrations)
    return text


def _matchbox_certs(out: Path, servers: Sequence[str], days: int) -> int:
    try:
        written = make_certificates(out, servers, days)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(error, FileExistsError) else 1
    print(instructions(written))
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
