"""Stand-in provider plugins for the four providers no plugin is served for (random, tls,
command, matchbox), written over the Python SDK's gRPC stubs.

``server`` is the shared scaffolding (the value model, the ResourceProvider servicer, the
engine's log); ``random_provider``, ``tls_provider``, ``command_provider`` and
``matchbox_provider`` each model one upstream provider, with the upstream source of every rule
cited beside it. ``tests/engine/bin/pulumi-resource-<name>`` runs one of them.
"""
