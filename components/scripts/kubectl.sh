# shellcheck shell=bash
# Sourced by the operator-side scripts: kubectl with the admin kubeconfig from the environment.
# KUBECONFIG_CONTENT is a secret: it goes to a private temporary file, never to a command line.

kubeconfig=$(mktemp)
trap 'rm -f "$kubeconfig"' EXIT
printf '%s\n' "${KUBECONFIG_CONTENT:?the admin kubeconfig}" >"$kubeconfig"

kc() {
	kubectl --kubeconfig "$kubeconfig" --request-timeout=10s "$@"
}
