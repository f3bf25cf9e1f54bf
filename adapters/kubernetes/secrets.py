"""Args whose value comes from a Secret: ``valueFrom: {secretKeyRef: {name, key}}``, read at reconcile time.

An arg of a VerificationTemplate (its default) or of the RolloutSpec's ``spec.strategy.args`` (which wins,
by name) may take its value from a key of a Secret in the workload's namespace, as in Argo Rollouts::

    args:
      - name: api-token
        valueFrom:
          secretKeyRef: {name: metrics-credentials, key: token}

Each reconcile reads the Secrets the compiled plan's templates need (:func:`secret_args`). A Secret or a key
that is not there is a :class:`SecretMissing` problem naming the arg, the template and the Secret: the
reconcile refuses as for an invalid spec (an ``InvalidSpec`` condition, nothing scaled) and the controller
tries again with backoff, since creating a Secret does not wake the workload (the controller does not watch
Secrets: it may only ``get`` them).

**Secret values never reach the status.** The compiled plan, which is persisted in ``status.engineState``,
keeps the ``{{args.x}}`` placeholder of a secret arg (``compile_plan`` leaves every ``valueFrom`` arg
unsubstituted). The values are put in by :mod:`.measuring` into the copy of the metric handed to the
provider, just before the measurement is taken, and blanked out of whatever the provider answers, so
neither the engine state, nor the conditions, events or logs derived from it ever hold one.
"""

from __future__ import annotations

import base64
import binascii

import kubernetes

from ebbtide.core.plan import Plan
from ebbtide.core.spec import Arg, Problem, SpecError, SpecSet

#: template -> arg name -> the secret's value
SecretArgs = dict[str, dict[str, str]]


class SecretMissing(SpecError):
    """A Secret (or a key of it) that an arg takes its value from is not there (yet): retried with backoff."""


def secret_args(
    client: kubernetes.client.ApiClient, namespace: str, specs: SpecSet, rollout: str, plan: Plan
) -> SecretArgs:
    """The value of every secret arg of the templates ``plan`` uses, read from ``namespace``'s Secrets."""
    core = kubernetes.client.CoreV1Api(client)
    given = {a.name: a for a in specs.rollout_specs[rollout].spec.strategy.args}
    read: dict[str, dict[str, str] | None] = {}  # one GET per Secret per reconcile
    out: SecretArgs = {}
    problems: list[Problem] = []
    for tname in sorted(plan.templates):
        for targ in specs.templates[tname].spec.args:
            arg = _effective(targ, given.get(targ.name))
            ref = (arg.value_from or {}).get("secretKeyRef") if arg is not None else None
            if ref is None:
                continue
            where = f"arg {targ.name!r} of VerificationTemplate {tname!r}"
            name, key = (ref.get("name"), ref.get("key")) if isinstance(ref, dict) else (None, None)
            if not isinstance(name, str) or not isinstance(key, str) or not name or not key:
                problems.append(_problem(tname, f"{where}: valueFrom.secretKeyRef needs a name and a key"))
                continue
            if name not in read:
                read[name] = _read(core, namespace, name)
            data = read[name]
            if data is None:
                problems.append(_problem(tname, f"{where}: Secret {namespace}/{name} not found"))
            elif key not in data:
                problems.append(_problem(tname, f"{where}: Secret {namespace}/{name} has no key {key!r}"))
            else:
                out.setdefault(tname, {})[targ.name] = data[key]
    if problems:
        raise SecretMissing(problems)
    return out


def _effective(template_arg: Arg, rollout_arg: Arg | None) -> Arg | None:
    """The arg that gives the value: the RolloutSpec's when it names it, else the template's default."""
    if rollout_arg is not None:
        return rollout_arg
    return template_arg if template_arg.value is None else None


def _read(core: kubernetes.client.CoreV1Api, namespace: str, name: str) -> dict[str, str] | None:
    """The Secret's data, decoded (None when there is no such Secret); other API errors propagate."""
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    out: dict[str, str] = {}
    for key, encoded in (secret.data or {}).items():
        try:
            out[key] = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue  # binary data cannot be an arg: reported as a missing key
    return out


def _problem(template: str, message: str) -> Problem:
    return Problem("<cluster>", 0, "VerificationTemplate", template, "", message)
