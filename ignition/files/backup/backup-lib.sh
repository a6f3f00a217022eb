# shellcheck shell=bash
# Shared by etcd-backup and etcd-restore: their settings, the destination (an S3-compatible
# bucket, or a directory on the machine) and the encryption.
#
# Settings: $BACKUP_ENV (default /etc/stubernetes/backup.env), key=value lines:
#   CLUSTER            the cluster's name, which starts every snapshot's name
#   KEEP               how many snapshots the destination keeps
#   KEY_FILE           the passphrase the snapshots are encrypted with (the program's secret)
#   STATE_DIR          where last-good.json and the scratch directory live
#   ETCD_TOOL          runs `etcdctl ...` and `etcdutl ...` (etcd-tool on a machine)
#   ETCD_ENDPOINT, ETCD_CACERT, ETCD_CERT, ETCD_KEY   the local member and a client of it
#   S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_PREFIX, S3_CURL_CONFIG   the bucket (S3_ENDPOINT
#                      empty: none); S3_CURL_CONFIG is a curl config file with `user = KEY:SECRET`
#                      (never on a command line, where /proc shows it)
#   BACKUP_DIR         the directory used when there is no bucket
#   KUBECONFIG_FILE, KUBECTL   where etcd-backup records the last good snapshot in the cluster
#                      (the ConfigMap kube-system/stubernetes-etcd-backup); empty: nowhere

# Exported: etcd-tool, a process of its own, reads ETCD_IMAGE and STATE_DIR.
set -a
# shellcheck disable=SC1090
. "${BACKUP_ENV:-/etc/stubernetes/backup.env}"
set +a
: "${CLUSTER:?}" "${KEEP:?}" "${KEY_FILE:?}" "${STATE_DIR:?}" "${ETCD_TOOL:?}"
# shellcheck disable=SC2034 # used by etcd-backup
LAST_GOOD=$STATE_DIR/last-good.json
# sha256 of the empty body, which a signed GET or DELETE declares.
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# A snapshot's object name: <cluster>-etcd-<UTC time>-r<revision>.db.gpg, so that names sort
# by time.
snapshot_name() { printf '%s-etcd-%s-r%s.db.gpg' "$CLUSTER" "$1" "$2"; }
snapshot_pattern() { printf '^%s-etcd-[0-9]{8}T[0-9]{6}Z-r[0-9]+\\.db\\.gpg$' "$CLUSTER"; }

# --- S3 (AWS Signature Version 4 by curl's --aws-sigv4; curl before 8.x does not sign the
# payload hash, which S3 requires in x-amz-content-sha256, so it is given explicitly) ---

s3_curl() {
	local body_sha256=$1
	shift
	curl --config "$S3_CURL_CONFIG" --silent --show-error --fail --max-time 600 \
		--aws-sigv4 "aws:amz:${S3_REGION:-us-east-1}:s3" \
		--header "x-amz-content-sha256: $body_sha256" "$@"
}

s3_url() { printf '%s/%s/%s' "${S3_ENDPOINT%/}" "$S3_BUCKET" "$1"; }

# The bucket's snapshot names (under S3_PREFIX), oldest first.
s3_list() {
	local prefix=${S3_PREFIX:-}$CLUSTER-etcd-
	s3_curl "$EMPTY_SHA256" "${S3_ENDPOINT%/}/$S3_BUCKET?list-type=2&prefix=${prefix//\//%2F}" |
		grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/' |
		sed "s|^${S3_PREFIX:-}||" | grep -E "$(snapshot_pattern)" | sort || true
}

# --- the destination: the bucket, or BACKUP_DIR ---

have_bucket() { [[ -n ${S3_ENDPOINT:-} ]]; }

destination() {
	if have_bucket; then printf '%s' "$(s3_url "${S3_PREFIX:-}")"; else printf '%s' "$BACKUP_DIR"; fi
}

list_snapshots() {
	if have_bucket; then
		s3_list
	else
		find "$BACKUP_DIR" -maxdepth 1 -type f -printf '%f\n' 2>/dev/null |
			grep -E "$(snapshot_pattern)" | sort || true
	fi
}

put_snapshot() {
	local file=$1 name=$2
	if have_bucket; then
		s3_curl "$(sha256sum "$file" | cut -d' ' -f1)" --upload-file "$file" \
			"$(s3_url "${S3_PREFIX:-}$name")" >/dev/null
	else
		mkdir -p "$BACKUP_DIR"
		# Copied under a name no listing matches, then renamed: a reader never sees half. A
		# copy cut short earlier is dropped.
		rm -f "$BACKUP_DIR"/.*.part
		cp "$file" "$BACKUP_DIR/.$name.part"
		sync "$BACKUP_DIR/.$name.part"
		mv "$BACKUP_DIR/.$name.part" "$BACKUP_DIR/$name"
	fi
}

get_snapshot() {
	local name=$1 file=$2
	if have_bucket; then
		s3_curl "$EMPTY_SHA256" --output "$file" "$(s3_url "${S3_PREFIX:-}$name")"
	else
		cp "$BACKUP_DIR/$name" "$file"
	fi
}

delete_snapshot() {
	if have_bucket; then
		s3_curl "$EMPTY_SHA256" --request DELETE "$(s3_url "${S3_PREFIX:-}$1")" >/dev/null
	else
		rm -f "$BACKUP_DIR/$1"
	fi
}

# --- encryption: GnuPG's symmetric mode (AES-256; OpenPGP's modification detection code
# makes gpg refuse a changed or cut file) with the passphrase from KEY_FILE ---

gpg_batch() {
	gpg --batch --quiet --no-tty --no-options --homedir "$work/gnupg" --pinentry-mode loopback \
		--passphrase-file "$KEY_FILE" "$@"
}

encrypt() { gpg_batch --symmetric --cipher-algo AES256 --force-mdc --output "$2" "$1"; }
decrypt() { gpg_batch --decrypt --output "$2" "$1"; }

etcdctl() {
	local tls=()
	# A kubeadm member serves clients over TLS only; the client certificate is optional here
	# for a member without it.
	if [[ -n ${ETCD_CACERT:-} ]]; then
		tls=(--cacert="$ETCD_CACERT" --cert="$ETCD_CERT" --key="$ETCD_KEY")
	fi
	$ETCD_TOOL etcdctl --endpoints="$ETCD_ENDPOINT" "${tls[@]}" --command-timeout=60s "$@"
}

etcdutl() { $ETCD_TOOL etcdutl "$@"; }

# A scratch directory under STATE_DIR, removed on exit; gpg's home inside it. A run killed
# outright (a power cut, SIGKILL) leaves its own, which holds a plaintext snapshot: the next
# run removes it (runs never overlap: one timer's oneshot service, and the restore runs before
# the setup has made the node, when the service does not run).
make_work() {
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	rm -rf "$STATE_DIR"/work.*
	work=$(mktemp -d "$STATE_DIR/work.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	mkdir -m 0700 "$work/gnupg"
}
