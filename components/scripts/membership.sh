# shellcheck shell=bash
# Sourced by the operator-side scripts that take a machine out of the cluster (clean-before-rejoin
# before a reinstall, remove-machine when it leaves the stack): etcdctl in a controller's etcd
# static pod, and the drain of a Node.
#
# The drain: `kubectl drain <node> --ignore-daemonsets --delete-emptydir-data
# --timeout=<DRAIN_TIMEOUT_SECONDS>s` cordons the Node and evicts its pods through the Eviction
# API, which refuses (429) while a PodDisruptionBudget allows no disruption; kubectl retries
# every 5 s until its --timeout, then gives up and names the pods still pending
# (kubernetes/kubectl pkg/drain/drain.go evictPods, pkg/cmd/drain/drain.go). At the timeout, or
# any other drain failure, the calling script stops (exit 1) with the Node cordoned and nothing
# deleted; see clean-before-rejoin for the ways on. A Node that is not Ready adds
# --skip-wait-for-delete-timeout=1 (kubectl pkg/drain/filters.go shouldSkipPod).
# Needs kubectl.sh (kc, $workdir) and DRAIN_TIMEOUT_SECONDS.

# etcdctl as kubeadm's etcd static pod runs it, with the certificates kubeadm writes there
# (kubeadm's stacked etcd: /etc/kubernetes/pki/etcd).
# shellcheck disable=SC2034 # used by the scripts that source this file
ETCDCTL=(etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt
	--cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key)

# Boot ID and Ready status of a Node, "|"-separated so that an empty boot ID is not lost.
# shellcheck disable=SC2034
NODE_QUERY='{.status.nodeInfo.bootID}{"|"}{range .status.conditions[?(@.type=="Ready")]}{.status}{end}'

# drain_node NODE READY KEPT [AGAIN]: drain NODE (READY: its Ready status) or exit 1 naming the
# pods still there; KEPT says what was not deleted, AGAIN the command to run once it can go on.
drain_node() {
	local MACHINE=$1 ready=$2 kept=$3 again=${4:-pulumi up}
	local flags=(--ignore-daemonsets --delete-emptydir-data "--timeout=${DRAIN_TIMEOUT_SECONDS}s")
	if [[ $ready != True ]]; then
		flags+=(--skip-wait-for-delete-timeout=1)
		echo "$MACHINE is not Ready (Ready=${ready:-Unknown}): no kubelet finishes its pods," \
			"so the drain does not wait for a pod past its grace period"
	fi
	echo "draining $MACHINE (for at most ${DRAIN_TIMEOUT_SECONDS}s)"
	# shellcheck disable=SC2154 # $workdir comes from kubectl.sh
	local log="$workdir/drain.log"
	# kubectl's own progress goes to stderr, so that standard output stays this step's summary.
	if kc drain "$MACHINE" "${flags[@]}" 2>&1 | tee "$log" >&2; then
		echo "drained $MACHINE"
		return
	fi
	# What kubectl says when it gives up (pkg/cmd/drain/drain.go deleteOrEvictPodsSimple):
	# "There are pending pods in node "<node>" when an error occurred: ..." and a "pod/<name>"
	# line for each pod still to go; a refused eviction, retried, says
	# error when evicting pods/"<name>" -n "<namespace>" (will retry after 5s): <why>
	local pending refused outcome
	pending=$(awk '/^There are pending pods in node /{ listing = 1; next }
		listing && /^pod\// { sub(/^pod\//, ""); print; next } { listing = 0 }' "$log" |
		sort -u | paste -sd ' ')
	refused=$(sed -n 's|^error when evicting pods/"\([^"]*\)" -n "\([^"]*\)" (will retry after [^)]*): \(.*\)$|  \2/\1: \3|p' \
		"$log" | sort -u)
	if grep -q -e 'global timeout reached' -e 'context deadline exceeded' "$log"; then
		outcome="did not finish within ${DRAIN_TIMEOUT_SECONDS}s"
	else
		outcome="failed ($(grep '^error: ' "$log" | tail -n 1 || true))"
	fi
	{
		echo "the drain of $MACHINE $outcome: nothing was deleted ($kept)," \
			"and the Node stays cordoned."
		if [[ -n $pending ]]; then echo "pods still on $MACHINE: $pending"; fi
		if [[ -n $refused ]]; then
			echo "evictions refused:"
			echo "$refused"
		fi
		echo "To go on: let the evictions through (more replicas elsewhere, or a" \
			"PodDisruptionBudget that allows a disruption: kubectl get pdb -A), then run $again" \
			"again; or accept the disruption and drain by hand, deleting without checking the" \
			"budgets: kubectl drain $MACHINE --ignore-daemonsets --delete-emptydir-data" \
			"--disable-eviction, then $again; or keep the machine: kubectl uncordon $MACHINE"
	} >&2
	exit 1
}

