"""Shared fixtures: the example stack, stand-in material, and the repository's paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from repo_paths import EXAMPLE_STACK_FILE, TEST_SEED

from ignition.material import ClusterMaterial, standin_cluster_material
from stackconfig import StackConfig, parse_stack_config
from stackconfig.stackfile import read_stack_values


@pytest.fixture(scope="session")
def example_values() -> dict[str, Any]:
    values, _ = read_stack_values(EXAMPLE_STACK_FILE)
    return values


@pytest.fixture
def raw_values(example_values: dict[str, Any]) -> dict[str, Any]:
    """A private, mutable copy of the example stack's values."""
    return copy.deepcopy(example_values)


@pytest.fixture(scope="session")
def example_stack(example_values: dict[str, Any]) -> StackConfig:
    return parse_stack_config(example_values)


@pytest.fixture(scope="session")
def material() -> ClusterMaterial:
    return standin_cluster_material(TEST_SEED)
