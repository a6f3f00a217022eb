"""One operator-side step of a machine's install chain: a local Command that runs once per install.

The command provider replaces a Command only when its `triggers` change; any other change of its
inputs (its environment included) is an in-place update, and an update runs `update`, or, when
that is unset, `create` again (pulumi/pulumi-command `provider/pkg/provider/local/
commandController.go`, `Update`). A step that cleans a Node or power-cycles a machine must not
run again because the admin certificate was renewed, a controller was added or a timeout changed,
so every install step has an `update` that re-runs nothing: it prints the step's last output
again (the provider passes it as `PULUMI_COMMAND_STDOUT`, `commandOutputs.go`), which keeps the
step's `stdout` as it was for the steps that read it. What must run a step again is exactly a
new install: the machine's install anchor (`replace_with`) and its generation (`triggers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

SCRIPTS = "components/scripts"

# Re-runs nothing; keeps the step's recorded output, and says so on stderr.
KEEP_LAST_OUTPUT = (
    "printf '%s\\n' \"${PULUMI_COMMAND_STDOUT-}\"; "
    "echo 'install step unchanged: it runs again only when its machine is reinstalled' >&2"
)


def install_step(
    name: str,
    script: str,
    environment: dict[str, pulumi.Input[str]],
    generation: int,
    anchor: pulumi.Resource,
    after: pulumi.Resource | Sequence[pulumi.Resource],
    parent: pulumi.Resource,
    delete: str | None = None,
) -> command.local.Command:
    """Run `components/scripts/<script>` when its machine is (re)installed, and only then.

    `after`: what it waits for, a resource or a list of them."""
    depends_on = [after] if isinstance(after, pulumi.Resource) else list(after)
    return command.local.Command(
        name,
        create=f"bash {SCRIPTS}/{script}",
        update=KEEP_LAST_OUTPUT,
        delete=delete,
        environment=environment,
        triggers=[generation],
        opts=pulumi.ResourceOptions(parent=parent, replace_with=[anchor], depends_on=depends_on),
    )
