"""What a stack without `cluster.loadBalancerPool` goes without, said rather than left out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackconfig.address_pool import CLUSTER, POOL_FIELD
from stackconfig.problems import Problem

if TYPE_CHECKING:
    from stackconfig.model import StackConfig


def lan_warnings(stack: StackConfig) -> list[Problem]:
    if stack.cluster.load_balancer_pool is not None:
        return []
    return [
        Problem(
            CLUSTER,
            POOL_FIELD,
            "not set: the cluster gets no household DNS, no Gateway and no LoadBalancer "
            "Services (MetalLB hands out only the pool's addresses); give a range on the "
            "machines' subnet that nothing else uses, e.g. 192.168.10.240-192.168.10.250",
        )
    ]
