# shellcheck shell=bash
# Sourced by the operator-side scripts: kubectl with the admin kubeconfig from the environment.
# KUBECONFIG_CONTENT is a secret: it goes to a private temporary file, never to a command line.
# $workdir is a private temporary folder for the scripts' own files; both go away on exit.

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
kubeconfig=$(mktemp "$workdir/kubeconfig.XXXXXX")
printf '%s\n' "${KUBECONFIG_CONTENT:?the admin kubeconfig}" >"$kubeconfig"

kc() {
	kubectl --kubeconfig "$kubeconfig" --request-timeout=10s "$@"
}
