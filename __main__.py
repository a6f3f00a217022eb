"""The Pulumi program: load the stack config, build the cluster."""
