"""Your own Pulumi program, with a stubernetes cluster built inside it.

The stack config is an ordinary dict, shaped like a stubernetes stack file's `stubernetes:*`
values; here it is built in code, with the Matchbox credentials from this project's own config.
"""

import pulumi

from stubernetes.component import build_cluster, stack_config

config = pulumi.Config()
matchbox_host = config.require("matchboxHost")


def machine(mac: str, role: str, address: str) -> dict[str, object]:
    return {
        "mac": mac,
        "role": role,
        "installDisk": "/dev/sda",
        "address": address,
        "gateway": "192.168.20.1",
        "dns": ["192.168.20.1"],
    }


stack = stack_config(
    {
        "cluster": {
            "name": "home",
            "apiEndpoint": "192.168.20.11:6443",
            "kubernetesVersion": "1.36.3",
            "podCidr": "10.244.0.0/16",
            "serviceCidr": "10.96.0.0/12",
            "domain": "home.arpa",
            # LoadBalancer addresses on the LAN: the household DNS, the Gateway, then Services.
            "loadBalancerPool": "192.168.20.240-192.168.20.250",
        },
        "os": {"stream": "stable", "version": "44.20260817.3.2"},
        "matchbox": {
            "httpEndpoint": f"http://{matchbox_host}:8080",
            "rpcEndpoint": f"{matchbox_host}:8081",
            # Plain strings here: stubernetes keeps them secret in everything it registers.
            "caCert": config.require("matchboxCaCert"),
            "clientCert": config.require("matchboxClientCert"),
            "clientKey": config.require("matchboxClientKey"),
        },
        "admin": {
            "user": "core-admin",
            "sshAuthorizedKeys": [
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOhYRPbAb7SWaP5VfwIC/ES69zmImWQcCGafKFioRwXN"
                " admin@laptop"
            ],
        },
        "machines": {
            "c1": machine("52:54:00:b1:00:01", "controller", "192.168.20.11/24"),
            "w1": machine("52:54:00:b1:00:02", "worker", "192.168.20.21/24"),
        },
    }
)
cluster = build_cluster(stack)

# Anything else of your own goes beside it, e.g. a resource that needs the cluster's kubeconfig.
pulumi.export("controllers", [m.name for m in stack.controllers])
