"""The Pulumi program: load the stack config, build the cluster (`pulumi_program`)."""

from components.program import pulumi_program

pulumi_program()
