# Tree digest for the virtual bare-metal lab.
#
# Usage: sh tree-digest.sh ROOT [VOLATILE_PATH...]
#
# Run with BusyBox: in the lab guest as /bin/busybox sh, on the host as
# "$BUSYBOX" sh with BUSYBOX pointing at the same busybox-static binary the guest
# carries. Every external tool is called as "$BB <applet>", so both sides use the
# same BusyBox applets (find, sort, stat, sha256sum, readlink) and nothing from the
# host's PATH.
#
# Output: one manifest line per filesystem object under ROOT (ROOT itself excluded),
# then one final line "tree-sha256 <hex>" (the sha256 of the manifest lines, each
# ending in a newline). A manifest line is
#
#     <type> <mode> <uid>:<gid> <content> <path>
#
#   path     path relative to ROOT, starting "./"; lines are in bytewise (C locale)
#            order of path; paths must not contain a newline
#   type     d directory, f regular file, l symlink, c/b char/block device,
#            p fifo, s socket
#   mode     permission bits incl. setuid/setgid/sticky, octal (stat %a)
#   uid:gid  numeric owner and group
#   content  f: sha256 of the file's bytes;  l: sha256 of the link target string
#            (as readlink prints it, without a newline);  c/b: major,minor in hex;
#            d/p/s: "-";  any path listed as VOLATILE_PATH (relative, without "./"):
#            "volatile" (its type, mode and owner still count, its content not)
#
# Not covered: timestamps, link counts, inode numbers, sizes other than through
# content, extended attributes, SELinux labels, ACLs, hard-link identity.

BB=${BUSYBOX:-busybox}
export LC_ALL=C

root=$1
if [ -z "$root" ] || [ ! -d "$root" ]; then
    echo "usage: tree-digest.sh ROOT [VOLATILE_PATH...]" >&2
    exit 2
fi
shift

is_volatile() {
    for v in $VOLATILE; do
        [ "./$v" = "$1" ] && return 0
    done
    return 1
}
VOLATILE="$*"

manifest=$($BB mktemp) || exit 1
list=$($BB mktemp) || exit 1
trap '$BB rm -f "$manifest" "$list"' EXIT

cd "$root" || exit 1
$BB find . -mindepth 1 > "$list" || exit 1
$BB sort "$list" -o "$list" || exit 1

while IFS= read -r p; do
    owner=$($BB stat -c '%u:%g' "$p")
    if [ -L "$p" ]; then
        t=l
        mode=$($BB stat -c '%a' "$p")
        c=$($BB readlink "$p" | $BB tr -d '\n' | $BB sha256sum)
        c=${c%% *}
    elif [ -d "$p" ]; then
        t=d; mode=$($BB stat -c '%a' "$p"); c=-
    elif [ -f "$p" ]; then
        t=f; mode=$($BB stat -c '%a' "$p")
        c=$($BB sha256sum "$p"); c=${c%% *}
    elif [ -c "$p" ]; then
        t=c; mode=$($BB stat -c '%a' "$p"); c=$($BB stat -c '%t,%T' "$p")
    elif [ -b "$p" ]; then
        t=b; mode=$($BB stat -c '%a' "$p"); c=$($BB stat -c '%t,%T' "$p")
    elif [ -p "$p" ]; then
        t=p; mode=$($BB stat -c '%a' "$p"); c=-
    elif [ -S "$p" ]; then
        t=s; mode=$($BB stat -c '%a' "$p"); c=-
    else
        t='?'; mode=$($BB stat -c '%a' "$p"); c=-
    fi
    if is_volatile "$p"; then
        c=volatile
    fi
    echo "$t $mode $owner $c $p"
done < "$list" > "$manifest"

$BB cat "$manifest"
sum=$($BB sha256sum "$manifest")
echo "tree-sha256 ${sum%% *}"
