# shellcheck shell=bash
# Sourced first by every install step, after `set -euo pipefail`: the step runs again as a child
# whose standard output and error, everything it and the tools it runs print (kubectl's errors,
# a BMC's answers, a pxeCommand's output, the machines' status reports), reach the command
# provider only through bounded_lines; the step exits with the child's status once all of it
# is out.
#
# Why: pulumi-command v1.2.1 logs a step's output through a bufio.Scanner
# (provider/pkg/provider/util/util.go LogOutput), which stops at a line of 64 KiB
# (bufio.MaxScanTokenSize, Go src/bufio/scan.go), after which nothing reads the output and the
# step hangs for ever. And it returns stdout and stderr as strings in a gRPC response, which
# cannot carry bytes that are not UTF-8 (google.golang.org/protobuf refuses to marshal them;
# grpc-go "error while marshaling: string field contains invalid UTF-8"): the step would fail
# after it ran, and run again at the next `pulumi up`.

# The longest line a step prints, in bytes, its newline not counted.
OUTPUT_LINE_BYTES=4096
OUTPUT_CUT_MARK=" [cut]"

# bounded_lines: standard input to standard output, line by line as it comes (a gate's progress
# shows at once), each line at most OUTPUT_LINE_BYTES bytes (one that was longer ends in
# OUTPUT_CUT_MARK), every byte that is not printable ASCII or a tab made "?" (so the output
# is ASCII, hence UTF-8), a CR ending a line dropped. `read -n` keeps an endless line from
# filling memory: what is past the bound is read and dropped.
bounded_lines() {
	local LC_ALL=C line rest more tab=$'\t'
	while IFS= read -r -n "$OUTPUT_LINE_BYTES" line || [[ -n $line ]]; do
		more=false
		if ((${#line} == OUTPUT_LINE_BYTES)); then
			while IFS= read -r -n "$OUTPUT_LINE_BYTES" rest || [[ -n $rest ]]; do
				if [[ -n $rest ]]; then more=true; fi
				((${#rest} == OUTPUT_LINE_BYTES)) || break
			done
		fi
		line=${line%$'\r'}
		line=${line//[!${tab}[:print:]]/?}
		if [[ $more == true ]]; then
			line="${line:0:OUTPUT_LINE_BYTES-${#OUTPUT_CUT_MARK}}$OUTPUT_CUT_MARK"
		fi
		printf '%s\n' "$line"
	done
}

if [[ ${STUBERNETES_OUTPUT_BOUNDED:-} != true ]]; then
	# Standard error through one filter, standard output (fd 3) through the other; pipefail
	# (set by the step) makes the pipeline's status the child's.
	output_status=0
	{ STUBERNETES_OUTPUT_BOUNDED=true bash "$0" "$@" 2>&1 >&3 3>&- | bounded_lines >&2 3>&-; } 3>&1 |
		bounded_lines || output_status=$?
	exit "$output_status"
fi
