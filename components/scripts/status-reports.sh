# shellcheck shell=bash
# Sourced by the gates and the rejoin wait (after kubectl.sh): what each machine last reported
# of its setup. Each machine patches its status into the ConfigMap
# kube-system/stubernetes-status-<machine> with its own bootstrap token (components/
# status_report.py, ignition/files/setup/report-status); the admin reads them all in one call.
# Reading them is best effort: a gate never fails because a report cannot be read.

declare -A reports=()
# One line per report, "|"-separated so that empty fields are kept, the error last so that a
# "|" in it stays; a field a machine has not sent prints empty (kubectl's JSONPath output
# allows missing keys by default: --allow-missing-template-keys=true, k8s.io/cli-runtime
# pkg/genericclioptions/jsonpath_flags.go).
report_query='{range .items[*]}{.metadata.name}{"|"}{.data.phase}{"|"}{.data.state}{"|"}{.data.attempts}{"|"}{.data.updated}{"|"}{.data.last_error}{"\n"}{end}'

# describe_report PHASE STATE ATTEMPTS UPDATED LAST_ERROR: one line, as the status file means
# it (ignition/files/setup/stubernetes-setup: attempts counts the current phase's failures).
describe_report() {
	local phase=$1 state=$2 attempts=${3:-0} updated=$4 last_error=$5 what
	case $state in
	running) what="attempt $((attempts + 1)) running" ;;
	retrying) what="attempt $attempts failed, retrying" ;;
	failed) what="failed for good after $attempts attempts" ;;
	*) what=$state ;;
	esac
	printf 'phase %s, %s%s (reported %s)' "$phase" "${what:-no state}" \
		"${last_error:+; last error: $last_error}" "${updated:-at an unknown time}"
}

# read_reports: fill `reports` (machine name -> description) from the cluster.
read_reports() {
	local listing name phase state attempts updated last_error
	reports=()
	listing=$(kc -n kube-system get configmaps -l stubernetes.dev/status-of \
		-o "jsonpath=$report_query" 2>/dev/null) || return 0
	while IFS='|' read -r name phase state attempts updated last_error; do
		[[ -n $name && -n $phase ]] || continue
		reports[${name#stubernetes-status-}]=$(describe_report "$phase" "$state" "$attempts" \
			"$updated" "$last_error")
	done <<<"$listing"
}

# report_of MACHINE: what it last reported.
report_of() {
	printf '%s\n' "${reports[$1]:-no report yet}"
}
