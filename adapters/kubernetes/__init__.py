"""ebbtide.adapters.kubernetes: custom resources, manifests, traffic routers and (later) the controller.

Importing this package does not import the ``kubernetes`` client: ``ebbtide crd`` and the routers work on
a base install; only the modules that talk to a cluster need the ``kubernetes`` extra.
"""
