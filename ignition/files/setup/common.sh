# shellcheck shell=bash
# These names are used by the scripts that source this file.
# shellcheck disable=SC2034
# Shared by the setup runner and its phases: paths, logging and the status file.
# The status file is the first thing a person reads on a machine's console; its format is
# one key=value per line (see the README), rewritten atomically so a power cut never tears it.

STATE_DIR=/var/lib/stubernetes
STATUS_FILE=$STATE_DIR/status
PHASE_FILE=$STATE_DIR/phase
DONE_STAMP=$STATE_DIR/done
FAILED_STAMP=$STATE_DIR/failed
CONF_DIR=/etc/stubernetes
LIB_DIR=/usr/local/lib/stubernetes

# Exit status by which a phase asks the runner to reboot and run the same phase again.
PHASE_NEEDS_REBOOT=100

# Records that must outlive a power cut that comes seconds later. A power cut on the real node
# guest (tests/lab/test_lab_node.py) lost a phase recorded ten seconds before it, and left the
# kubeadm choice written just before it an empty file: ext4 writes file data back after up to
# 30 s (vm.dirty_expire_centisecs, Documentation/admin-guide/sysctl/vm.rst) and commits a new
# name before the data behind it, and a rename or a new file is durable only once its directory
# is (fsync(2): "Calling fsync() does not necessarily ensure that the entry in the directory
# containing the file has also reached disk"). coreutils' `sync FILE` fsyncs FILE.

# durable_write FILE TEXT: FILE holds TEXT and a newline, or (after a power cut) its old content.
durable_write() {
	printf '%s\n' "$2" >"$1.tmp"
	sync "$1.tmp"
	mv "$1.tmp" "$1"
	sync "$(dirname "$1")"
}

# durable_touch FILE: an empty stamp file that a power cut does not take back.
durable_touch() {
	touch "$1"
	sync "$(dirname "$1")"
}

log() {
	# stderr of a systemd service goes to the journal: journalctl -u stubernetes-setup
	printf 'stubernetes-setup: %s\n' "$*" >&2
}

status_get() {
	local key=$1
	[[ -r $STATUS_FILE ]] || return 0
	sed -n "s/^${key}=//p" "$STATUS_FILE" | tail -n 1
}

# status_set KEY VALUE [KEY VALUE ...]: update keys, keep the others, replace the file at once.
status_set() {
	local -A fields=()
	local line key
	if [[ -r $STATUS_FILE ]]; then
		while IFS= read -r line; do
			if [[ $line == *=* ]]; then fields[${line%%=*}]=${line#*=}; fi
		done <"$STATUS_FILE"
	fi
	while (($# >= 2)); do
		fields[$1]=${2//$'\n'/ }
		shift 2
	done
	fields[updated]=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	mkdir -p "$STATE_DIR"
	for key in "${!fields[@]}"; do
		printf '%s=%s\n' "$key" "${fields[$key]}"
	done | sort >"$STATUS_FILE.tmp"
	mv "$STATUS_FILE.tmp" "$STATUS_FILE"
}
