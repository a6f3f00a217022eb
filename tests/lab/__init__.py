"""Virtual bare-metal lab: QEMU + iPXE + a Matchbox stand-in + the real Ignition."""
