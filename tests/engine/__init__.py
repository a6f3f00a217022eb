"""What the tests bring to the real Pulumi engine: stand-in provider plugins (``plugins``) and
the executables the engine finds on ``PATH`` (``bin/``)."""
