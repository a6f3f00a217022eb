"""Ignition for stubernetes machines: pure Python, no Pulumi import, deterministic output."""

from ignition.material import ClusterMaterial, standin_bootstrap_token, standin_cluster_material
from ignition.node import SetupPolicy, machine_ignition, machine_ignition_json

__all__ = [
    "ClusterMaterial",
    "SetupPolicy",
    "machine_ignition",
    "machine_ignition_json",
    "standin_bootstrap_token",
    "standin_cluster_material",
]
