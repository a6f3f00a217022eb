"""The `stubernetes` command: offline render and helpers around the Pulumi program."""
