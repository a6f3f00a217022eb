"""The Pulumi program: load the stack config, build the cluster."""

from components.config import load_stack_config
from components.program import build_cluster

build_cluster(load_stack_config())
