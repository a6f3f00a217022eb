"""The floor for the engine benchmark: a program that registers as many resources of each type
as the program's stack holds, through the same plugins, and does nothing else.

Its spec (JSON, ``--floor SPEC`` of engine.driver): ``counts`` (resource type -> how many: the
program's stack export, counted), ``kubeconfig`` (a file: the cluster the Kubernetes resources
go to), ``matchbox`` (the lab's endpoint and its client's TLS files), ``chart`` (a local chart
for the Helm releases). Inputs are the smallest each type takes; names start with ``floor-`` so
nothing collides with the program's objects in Matchbox or the cluster. Commands run ``true``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKENS = {
    "random_id": "random:index/randomId:RandomId",
    "random_string": "random:index/randomString:RandomString",
    "random_password": "random:index/randomPassword:RandomPassword",
    "private_key": "tls:index/privateKey:PrivateKey",
    "self_signed": "tls:index/selfSignedCert:SelfSignedCert",
    "cert_request": "tls:index/certRequest:CertRequest",
    "locally_signed": "tls:index/locallySignedCert:LocallySignedCert",
    "command": "command:local:Command",
    "profile": "matchbox:index/profile:Profile",
    "group": "matchbox:index/group:Group",
    "secret": "kubernetes:core/v1:Secret",
    "configmap": "kubernetes:core/v1:ConfigMap",
    "role": "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "role_binding": "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "release": "kubernetes:helm.sh/v3:Release",
    "stack_reference": "pulumi:pulumi:StackReference",
}
# What the engine makes of its own accord, or the floor has explicitly as the program does.
NOT_COUNTED = ("pulumi:pulumi:Stack", "pulumi:providers:")


def counts_of_export(deployment: dict[str, Any]) -> dict[str, int]:
    """Resource types and how many of each a stack export holds, as the floor registers them
    (the stack and the providers left out: the floor has its own two explicit providers, and
    the engine adds the default ones to both)."""
    counts: dict[str, int] = {}
    for resource in deployment.get("deployment", deployment).get("resources") or []:
        kind = str(resource["type"])
        if kind.startswith(NOT_COUNTED):
            continue
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def floor_program(spec: dict[str, Any]) -> Callable[[], None]:
    def program() -> None:
        import pulumi
        import pulumi_command as command
        import pulumi_kubernetes as k8s
        import pulumi_random as random
        import pulumi_tls as tls
        import pulumiverse_matchbox as matchbox

        counts: dict[str, int] = dict(spec["counts"])
        unknown = [
            t for t in counts if t not in TOKENS.values() and not t.startswith("stubernetes:")
        ]
        if unknown:
            raise pulumi.RunError(f"the floor has no model of {unknown}")

        def many(token: str) -> range:
            return range(counts.get(token, 0))

        tls_dir = Path(spec["matchbox"]["tls"])
        box = matchbox.Provider(
            "matchbox",
            endpoint=spec["matchbox"]["rpc"],
            client_cert=pulumi.Output.secret((tls_dir / "client.crt").read_text()),
            client_key=pulumi.Output.secret((tls_dir / "client.key").read_text()),
            ca=pulumi.Output.secret((tls_dir / "ca.crt").read_text()),
        )
        cluster = k8s.Provider(
            "cluster",
            kubeconfig=pulumi.Output.secret(Path(spec["kubeconfig"]).read_text()),
            cluster_identifier="floor",
        )
        for index in many(TOKENS["random_id"]):
            random.RandomId(f"floor-id-{index}", byte_length=4)
        for index in many(TOKENS["random_string"]):
            random.RandomString(f"floor-string-{index}", length=6, special=False, upper=False)
        for index in many(TOKENS["random_password"]):
            random.RandomPassword(f"floor-password-{index}", length=16, special=False)
        keys = [
            tls.PrivateKey(f"floor-key-{i}", algorithm="ECDSA", ecdsa_curve="P256")
            for i in many(TOKENS["private_key"])
        ]
        subject = tls.SelfSignedCertSubjectArgs(common_name="floor")
        cas = [
            tls.SelfSignedCert(
                f"floor-ca-{i}",
                private_key_pem=keys[0].private_key_pem,
                subject=subject,
                validity_period_hours=24,
                is_ca_certificate=True,
                allowed_uses=["cert_signing"],
            )
            for i in many(TOKENS["self_signed"])
        ]
        requests = [
            tls.CertRequest(
                f"floor-request-{i}",
                private_key_pem=keys[-1].private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=f"floor-{i}"),
            )
            for i in many(TOKENS["cert_request"])
        ]
        for index in many(TOKENS["locally_signed"]):
            tls.LocallySignedCert(
                f"floor-cert-{index}",
                cert_request_pem=requests[index % len(requests)].cert_request_pem,
                ca_private_key_pem=keys[0].private_key_pem,
                ca_cert_pem=cas[0].cert_pem,
                validity_period_hours=24,
                allowed_uses=["client_auth"],
            )
        for index in many(TOKENS["command"]):
            command.local.Command(f"floor-command-{index}", create="true", triggers=[1])
        ignition = '{"ignition":{"version":"3.3.0"}}'
        box_opts = pulumi.ResourceOptions(provider=box, delete_before_replace=True)
        profiles = [
            matchbox.Profile(
                f"floor-{i}",
                name=f"floor-{i}",
                kernel="/assets/floor",
                raw_ignition=pulumi.Output.secret(ignition),
                opts=box_opts,
            )
            for i in many(TOKENS["profile"])
        ]
        for index in many(TOKENS["group"]):
            matchbox.Group(
                f"floor-{index}",
                name=f"floor-{index}",
                profile=profiles[index % len(profiles)].name,
                selector={"mac": f"02:00:00:00:{index // 256:02x}:{index % 256:02x}"},
                opts=box_opts,
            )
        on_cluster = pulumi.ResourceOptions(provider=cluster)
        for index in many(TOKENS["secret"]):
            k8s.core.v1.Secret(
                f"floor-{index}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"floor-{index}", namespace="default"),
                string_data={"floor": str(index)},
                opts=on_cluster,
            )
        for index in many(TOKENS["configmap"]):
            k8s.core.v1.ConfigMap(
                f"floor-{index}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"floor-{index}", namespace="default"),
                opts=on_cluster,
            )
        for index in many(TOKENS["role"]):
            k8s.rbac.v1.Role(
                f"floor-{index}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"floor-{index}", namespace="default"),
                rules=[
                    k8s.rbac.v1.PolicyRuleArgs(
                        api_groups=[""], resources=["secrets"], verbs=["get"]
                    )
                ],
                opts=on_cluster,
            )
        for index in many(TOKENS["role_binding"]):
            k8s.rbac.v1.RoleBinding(
                f"floor-{index}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"floor-{index}", namespace="default"),
                role_ref=k8s.rbac.v1.RoleRefArgs(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="floor-0"
                ),
                subjects=[
                    k8s.rbac.v1.SubjectArgs(
                        api_group="rbac.authorization.k8s.io", kind="Group", name="floor"
                    )
                ],
                opts=on_cluster,
            )
        for index in many(TOKENS["release"]):
            k8s.helm.v3.Release(
                f"floor-{index}",
                name=f"floor-{index}",
                chart=spec["chart"],
                namespace="floor",
                create_namespace=True,
                atomic=True,
                opts=on_cluster,
            )
        if counts.get(TOKENS["stack_reference"]):
            # The program has one: its reference to its own stack.
            organization = pulumi.get_organization() or "organization"
            pulumi.StackReference(f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}")
        for token, count in counts.items():
            if token.startswith("stubernetes:"):
                for index in range(count):
                    pulumi.ComponentResource(token, f"floor-{token.rsplit(':', 1)[-1]}-{index}")

    return program


def read_spec(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def write_chart(directory: Path) -> Path:
    """A local chart of one ConfigMap, for the floor's Helm releases."""
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "Chart.yaml").write_text(
        "apiVersion: v2\nname: floor\nversion: 0.1.0\ndescription: the engine benchmark's floor\n"
    )
    (directory / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        'data:\n  floor: "1"\n'
    )
    return directory
