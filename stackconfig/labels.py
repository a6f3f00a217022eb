"""Kubernetes' syntax for label keys and values, taint keys, and the node labels kubelet accepts.

Upstream (Kubernetes 1.36), restated here because stackconfig is pure Python:

- label keys ("qualified names") and values: kubernetes/kubernetes
  `staging/src/k8s.io/apimachinery/pkg/api/validate/content/kube.go` (`IsLabelKey`, which
  `IsQualifiedName` in `staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go` now
  is, and `IsLabelValue`), and `.../content/dns.go` (`IsDNS1123Subdomain`, at most 253);
- the labels kubelet may set on its own Node with `--node-labels`:
  `staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go` (`KubeletLabels`,
  `KubeletLabelNamespaces`, `IsKubeletLabel`), applied in `cmd/kubelet/app/options/options.go`
  (`ValidateKubeletFlags`, `isKubernetesLabel`): a key in the `kubernetes.io` or `k8s.io`
  namespace that is not one of those makes kubelet exit at start, so the join fails;
- taints: `pkg/apis/core/validation/validation.go` (`validateNodeTaints`: the key is a label
  key, the value a label value, the effect one of `validateTaintEffect`'s, unique by key and
  effect).
"""

from __future__ import annotations

import re

NAME_MAX = 63
PREFIX_MAX = 253
VALUE_MAX = 63
NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# well_known_labels.go's kubeletLabels (v1.LabelHostname, LabelTopologyZone/Region, the beta
# failure-domain pair, both instance-type labels, the OS and arch labels, GA and beta).
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    }
)
# well_known_labels.go's kubeletLabelNamespaces: the namespace itself or any subdomain of it.
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
# options.go's isKubernetesLabel: the namespaces kubelet keeps to itself.
KUBERNETES_NAMESPACES = ("kubernetes.io", "k8s.io")

_CHARSET = "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric"


def _in_namespace(prefix: str, namespace: str) -> bool:
    return prefix == namespace or prefix.endswith("." + namespace)


def qualified_name_errors(key: str) -> list[str]:
    """What is wrong with `key` as a label key (empty if nothing), as IsLabelKey sees it."""
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a key is a name with an optional DNS-subdomain prefix and one '/' "
            "(e.g. 'example.com/my-name'); it has more than one '/'"
        ]
    errors = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("its prefix (before '/') is empty")
        elif len(prefix) > PREFIX_MAX:
            errors.append(f"its prefix is longer than {PREFIX_MAX} characters")
        elif not DNS1123_SUBDOMAIN.match(prefix):
            errors.append(
                f"its prefix {prefix!r} is not a DNS subdomain (lowercase letters, digits, "
                "'-' and '.', e.g. 'example.com')"
            )
    if not name:
        errors.append("its name (after the prefix) is empty")
    elif len(name) > NAME_MAX:
        errors.append(f"its name is longer than {NAME_MAX} characters")
    elif not NAME.match(name):
        errors.append(f"its name {name!r} must consist of {_CHARSET}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """What is wrong with `value` as a label (or taint) value, as IsLabelValue sees it."""
    if len(value) > VALUE_MAX:
        return [f"longer than {VALUE_MAX} characters"]
    if value and not NAME.match(value):
        return [f"a value must be empty or consist of {_CHARSET}"]
    return []


def is_kubelet_label(key: str) -> bool:
    """Whether kubelet accepts `key` in --node-labels (IsKubeletLabel, or not Kubernetes')."""
    prefix, sep, _ = key.partition("/")
    if not sep or not any(_in_namespace(prefix, ns) for ns in KUBERNETES_NAMESPACES):
        return True
    if key in KUBELET_LABELS:
        return True
    return any(_in_namespace(prefix, ns) for ns in KUBELET_LABEL_NAMESPACES)


def check_label_key(key: str) -> str:
    errors = qualified_name_errors(key)
    if errors:
        reasons = "; ".join(errors)
        raise ValueError(f"label key {key!r} is not a valid Kubernetes label key: {reasons}")
    if not is_kubelet_label(key):
        name = key.partition("/")[2]
        raise ValueError(
            f"kubelet would refuse {key!r} at join time on this machine, which would then never "
            "join (--node-labels may use the kubernetes.io and k8s.io namespaces only under "
            f"{' and '.join(f'{ns}/' for ns in KUBELET_LABEL_NAMESPACES)}, and for kubelet's "
            "own well-known labels such as kubernetes.io/hostname); use a label of your own "
            f"domain instead, e.g. 'example.com/{name}', or label the Node with kubectl once "
            "it exists"
        )
    return key


def check_label_value(value: str) -> str:
    errors = label_value_errors(value)
    if errors:
        raise ValueError(
            f"label value {value!r} is not a valid Kubernetes label value: {errors[0]}"
        )
    return value


def check_taint_key(key: str) -> str:
    errors = qualified_name_errors(key)
    if errors:
        reasons = "; ".join(errors)
        raise ValueError(f"taint key {key!r} is not a valid Kubernetes label key: {reasons}")
    return key


def check_taint_value(value: str) -> str:
    errors = label_value_errors(value)
    if errors:
        raise ValueError(
            f"taint value {value!r} is not a valid Kubernetes label value: {errors[0]}"
        )
    return value
