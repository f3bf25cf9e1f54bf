"""The operator HTTP API and dashboard (FastAPI on uvicorn; the optional extra ``api``).

- :mod:`.backend`: where rollouts live — the :class:`~.backend.Backend` protocol the routes call,
  implemented over a Kubernetes cluster and over in-process memory drivers (``ebbtide demo``).
- :mod:`.auth`: who is calling and whether they may (TokenReview + SubjectAccessReview on a cluster).
- :mod:`.app`: :func:`~.app.create_app` puts the routers together: native routes, Ocean CD-compatible routes,
  server-sent event streams and the dashboard.
"""
