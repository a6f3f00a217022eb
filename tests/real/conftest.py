"""Fixtures shared by the real layer's tests."""

from __future__ import annotations

from typing import Any

import pytest
from control_plane.cluster import PREVIOUS_RELEASE
from control_plane.program_output import ProgramOutput, render_program
from control_plane.stacks import for_built_kubeadm


@pytest.fixture(scope="module")
def previous_minor_output(example_values: dict[str, Any]) -> ProgramOutput:
    """The program's output for the example at the previous minor's release (the tool
    "kubernetes-previous"), which the real kubeadm upgrade tests found their cluster from."""
    return render_program(for_built_kubeadm(example_values, PREVIOUS_RELEASE))
