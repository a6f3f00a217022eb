"""How much a stack file may hold before its reader refuses it, measured against real stacks.

A home lab's stack file is a few KiB. The yardstick is a 500-machine stack with every optional
field of every machine filled (static address, gateway, two DNS servers, three labels, a taint,
two kernel arguments, a Redfish BMC with a secure password): 345 KB, 25,000 YAML nodes (each
key, value, list and map counts one), nested 6 deep (Ignition snippets and Helm values nest a
few levels more). Each limit leaves a wide margin over that, and stops what no stack needs
before it costs time or memory: PyYAML reads YAML in pure Python, at 20-250 KB/s on a busy
2-core machine (the composer recurses, three Python frames per level), and its
aliases repeat a node wherever they point, so a 1 KiB document ("billion laughs") can stand
for 10^9 values.
"""

from __future__ import annotations

MAX_FILE_BYTES = 2 * 1024 * 1024
"""The stack file's size: 2 MiB, 6 times the 500-machine stack. It bounds the time a file can
take: a 2 MiB stack of 3,038 such machines read in 21 s, and the densest 2 MiB file (a flow
list of one-letter values) was refused at MAX_VALUES after 27 s, both on this project's
2-core machine at a load of 10."""

MAX_VALUES = 250_000
"""Nodes in the document once every alias is expanded (as the program gets it: Pulumi hands it
plain JSON): 10 times the 500-machine stack. Counted while composing too, so a file crammed
with tiny values stops early."""

MAX_DEPTH = 64
"""Nesting of lists and maps, aliases followed: 10 times the 500-machine stack's, and far
below Python's recursion limit (1000 frames) at four frames per level."""
