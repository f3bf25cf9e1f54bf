"""The API group, version and plurals of ebbtide's custom resources (no kubernetes client import: the HTTP
API and ``ebbtide demo`` use them on an install without the ``kubernetes`` extra)."""

from __future__ import annotations

GROUP, VERSION, PLURAL = "ebbtide.dev", "v1alpha1", "ebbtidedeployments"
SPEC_PLURALS = {
    "RolloutSpec": "rolloutspecs",
    "Strategy": "strategies",
    "VerificationTemplate": "verificationtemplates",
    "VerificationProvider": "verificationproviders",
}
