"""The daily admin credential is not the break-glass one, and both renew before they expire."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from pulumi.runtime import rpc

from stubernetes.mocks import unwrap_secrets
from stubernetes.program_run import ProgramRun, run_program

CERT = "tls:index/locallySignedCert:LocallySignedCert"


@pytest.fixture(scope="module")
def run(example_values: dict[str, Any]) -> ProgramRun:
    return run_program(example_values, ["matchbox"])


def client_subject(kubeconfig: str) -> x509.Name:
    (user,) = yaml.safe_load(kubeconfig)["users"]
    pem = base64.b64decode(user["user"]["client-certificate-data"])
    return x509.load_pem_x509_certificate(pem).subject


def groups(subject: x509.Name) -> list[str]:
    return [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_daily_admin_is_in_kubeadms_cluster_admins_group(run: ProgramRun) -> None:
    # kubeadm 1.29 and later: admin.conf's user is in the group kubeadm:cluster-admins, which
    # kubeadm init binds to the cluster-admin ClusterRole by RBAC (kubernetes
    # cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go, EnsureAdminClusterRoleBindingImpl;
    # cmd/kubeadm/app/constants/constants.go ClusterAdminsGroupAndClusterRoleBinding), so it
    # can be limited or revoked like any RBAC subject.
    assert rpc.is_rpc_secret(run.stack_outputs["kubeconfig"])
    subject = client_subject(unwrap_secrets(run.stack_outputs["kubeconfig"]))
    assert groups(subject) == ["kubeadm:cluster-admins"]


def test_break_glass_is_system_masters_and_a_separate_secret(run: ProgramRun) -> None:
    # system:masters bypasses RBAC (kubeadm's super-admin.conf); it is the emergency credential.
    assert rpc.is_rpc_secret(run.stack_outputs["breakGlassKubeconfig"])
    break_glass = unwrap_secrets(run.stack_outputs["breakGlassKubeconfig"])
    assert groups(client_subject(break_glass)) == ["system:masters"]
    daily = unwrap_secrets(run.stack_outputs["kubeconfig"])
    assert yaml.safe_load(break_glass)["users"] != yaml.safe_load(daily)["users"]


def test_both_last_a_year_and_renew_in_their_last_30_days(run: ProgramRun) -> None:
    # The tls provider marks a certificate `readyForRenewal` once now >= its end minus
    # `earlyRenewalHours`, and the next preview replaces it (hashicorp/terraform-provider-tls
    # internal/provider/resource_locally_signed_cert.go, modifyPlanIfCertificateReadyForRenewal).
    certs = {r.name: r.inputs for r in run.registrations if r.type == CERT}
    assert set(certs) == {"lab-admin", "lab-break-glass"}
    for inputs in certs.values():
        assert inputs["validityPeriodHours"] == 365 * 24
        assert inputs["earlyRenewalHours"] == 30 * 24
        assert "client_auth" in inputs["allowedUses"]
