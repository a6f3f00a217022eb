"""Paths and constants the tests share."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_STACK_FILE = REPO / "stacks" / "Pulumi.example.yaml"
TEST_SEED = "tests"
