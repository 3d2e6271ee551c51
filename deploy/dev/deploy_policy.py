#!/usr/bin/env python3
"""The deployment policy, checked over rendered Kubernetes objects (make check-deploy).

    deploy_policy.py RENDERED.yaml…   violations, one per line; exit 1 if any
    deploy_policy.py --self-test R.yaml   each rule must catch a deliberately broken copy of R

Rules: every container of a long-running workload has readiness and liveness probes; every
container has CPU and memory requests and limits and a restrictive security context (no
privilege escalation, read-only root filesystem, all capabilities dropped; the pod runs as
non-root with seccomp RuntimeDefault); every Deployment has a HorizontalPodAutoscaler and a
PodDisruptionBudget; every namespace has a default-deny NetworkPolicy; no Secret carries
values and no secret-looking variable is written inline; no image is untagged or `:latest`.
"""
import copy
import re
import sys

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
POD_OWNERS = WORKLOADS | {"Job"}
SECRET_NAME = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN)", re.IGNORECASE)


def load(paths):
    objects = []
    for path in paths:
        with open(path) as handle:
            objects += [doc for doc in yaml.safe_load_all(handle) if doc]
    return objects


def name(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def containers(obj):
    spec = pod_spec(obj)
    return spec.get("initContainers", []) + spec.get("containers", [])


def violations(objects):
    found = []
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    namespaces |= {o["metadata"].get("namespace") for o in objects if o["kind"] in POD_OWNERS and o["metadata"].get("namespace")}
    for obj in objects:
        kind = obj["kind"]
        if kind in POD_OWNERS:
            spec = pod_spec(obj)
            pod_security = spec.get("securityContext", {})
            for container in containers(obj):
                where = f"{name(obj)} container {container['name']}"
                if kind in WORKLOADS and container in spec.get("containers", []):
                    for probe in ("readinessProbe", "livenessProbe"):
                        if probe not in container:
                            found.append(f"{where}: no {probe}")
                resources = container.get("resources", {})
                for part in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in resources.get(part, {}):
                            found.append(f"{where}: no {resource} {part[:-1]}")
                security = container.get("securityContext", {})
                if security.get("allowPrivilegeEscalation") is not False:
                    found.append(f"{where}: allowPrivilegeEscalation is not false")
                if security.get("readOnlyRootFilesystem") is not True:
                    found.append(f"{where}: root filesystem is not read-only")
                if "ALL" not in security.get("capabilities", {}).get("drop", []):
                    found.append(f"{where}: capabilities are not all dropped")
                if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                    found.append(f"{where}: may run as root")
                seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile") or {}
                if seccomp.get("type") != "RuntimeDefault":
                    found.append(f"{where}: seccomp profile is not RuntimeDefault")
                image = container.get("image", "")
                tag = image.rsplit("/", 1)[-1]
                if ":" not in tag and "@" not in tag or tag.endswith(":latest"):
                    found.append(f"{where}: image {image!r} has no pinned tag")
                for variable in container.get("env", []):
                    if SECRET_NAME.search(variable["name"]) and variable.get("value"):
                        found.append(f"{where}: {variable['name']} is written inline; reference a Secret")
        if kind == "Deployment":
            target = obj["metadata"]["name"]
            labels = obj["spec"]["template"]["metadata"].get("labels", {})
            if not any(o["kind"] == "HorizontalPodAutoscaler" and o["spec"]["scaleTargetRef"]["name"] == target for o in objects):
                found.append(f"{name(obj)}: no HorizontalPodAutoscaler")
            if not any(o["kind"] == "PodDisruptionBudget"
                       and o["spec"].get("selector", {}).get("matchLabels", {}).items() <= labels.items() for o in objects):
                found.append(f"{name(obj)}: no PodDisruptionBudget")
        if kind == "Secret" and (obj.get("data") or obj.get("stringData")):
            found.append(f"{name(obj)}: carries values; reference a Secret made outside the manifests")
        if kind == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                if SECRET_NAME.search(key) and value:
                    found.append(f"{name(obj)}: {key} looks like a secret written inline")
    for namespace in sorted(namespaces):
        if not any(o["kind"] == "NetworkPolicy" and o["metadata"].get("namespace") == namespace
                   and o["spec"].get("podSelector") == {} and set(o["spec"].get("policyTypes", [])) >= {"Ingress", "Egress"}
                   and not o["spec"].get("ingress") and not o["spec"].get("egress") for o in objects):
            found.append(f"namespace {namespace}: no default-deny NetworkPolicy")
    return found


def self_test(objects):
    """Each rule, broken on purpose in a copy of good objects, must be reported."""
    def first(kind):
        return next(i for i, o in enumerate(objects) if o["kind"] == kind)

    def mutate(change):
        broken = copy.deepcopy(objects)
        change(broken)
        return broken

    deployment = first("Deployment")
    cases = {
        "no readinessProbe": lambda o: pod_spec(o[deployment])["containers"][0].pop("readinessProbe"),
        "no memory limit": lambda o: pod_spec(o[deployment])["containers"][0]["resources"]["limits"].pop("memory"),
        "root filesystem is not read-only": lambda o: pod_spec(o[deployment])["containers"][0]["securityContext"].pop("readOnlyRootFilesystem"),
        "may run as root": lambda o: pod_spec(o[deployment])["securityContext"].pop("runAsNonRoot"),
        "no HorizontalPodAutoscaler": lambda o: o.pop(next(i for i, x in enumerate(o) if x["kind"] == "HorizontalPodAutoscaler"
                                                          and x["spec"]["scaleTargetRef"]["name"] == o[deployment]["metadata"]["name"])),
        "no PodDisruptionBudget": lambda o: [x for x in o if x["kind"] == "PodDisruptionBudget"
                                             and x["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name") == o[deployment]["metadata"]["name"]][0]
                                            ["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "nobody"}),
        "no default-deny NetworkPolicy": lambda o: o.pop(next(i for i, x in enumerate(o) if x["kind"] == "NetworkPolicy"
                                                             and x["metadata"]["name"] == "default-deny")),
        "carries values": lambda o: o.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leak", "namespace": "conduit"},
                                              "stringData": {"key": "hunter2"}}),
        "written inline": lambda o: pod_spec(o[deployment])["containers"][0]["env"].append({"name": "OPENAI_API_KEY", "value": "sk-x"}),
        "has no pinned tag": lambda o: pod_spec(o[deployment])["containers"][0].update({"image": "ghcr.io/x/conduit:latest"}),
    }
    failures = []
    if violations(objects):
        failures.append("the unbroken objects already violate the policy")
    for expected, change in cases.items():
        reported = violations(mutate(change))
        if not any(expected in line for line in reported):
            failures.append(f"breaking it so that '{expected}' was not reported (got {reported})")
    return failures


def main(arguments):
    if arguments and arguments[0] == "--self-test":
        failures = self_test(load(arguments[1:]))
        for line in failures:
            print(f"policy self-test: {line}")
        return 1 if failures else 0
    found = violations(load(arguments))
    for line in found:
        print(f"policy: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
