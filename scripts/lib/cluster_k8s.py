#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cluster_k8s.py - Service and EndpointSlice objects for the namespace cluster
of scripts/lib/cluster.sh, as JSON for tests/e2e/k8s/k8sctl.py apply.

Contract: prints one JSON list [Service, EndpointSlice] on stdout and exits 0,
or one line on stderr and exits 2 on a malformed argument. Nothing else.

  cluster_k8s.py NAME VIP PORT TARGETPORT [EP...] [--proto TCP|UDP]
                 [--namespace NS] [--node-port N] [--spec JSON] [--status JSON]
  EP: ADDR@NODE@POD[@CONDITION], CONDITION one of
      ready        (default) ready, serving, not terminating
      terminating  not ready, serving, terminating (a pod shutting down)
      notready     not ready, not serving, not terminating
  --node-port N: type NodePort, the port's nodePort N (30000-32767).
  --spec JSON: merged into the Service's spec last, so later features
      (externalTrafficPolicy, healthCheckNodePort, ...) need no new flag.
  --status JSON: the Service's status (e.g. {"loadBalancer": {"ingress":
      [{"ip": ...}]}}), as a cloud controller writes it.

The Service is port "p" (PORT -> TARGETPORT); the slice "NAME-s1" carries
every endpoint with its nodeName and targetRef, as the EndpointSlice
controller writes them.
"""
import argparse
import json
import sys

CONDITIONS = {
    "ready": {"ready": True, "serving": True, "terminating": False},
    "terminating": {"ready": False, "serving": True, "terminating": True},
    "notready": {"ready": False, "serving": False, "terminating": False},
}


def endpoint(text):
    parts = text.split("@")
    if len(parts) not in (3, 4) or not all(parts[:3]):
        raise ValueError("endpoint %r: want ADDR@NODE@POD[@CONDITION]" % text)
    cond = parts[3] if len(parts) == 4 else "ready"
    if cond not in CONDITIONS:
        raise ValueError("endpoint %r: condition %r is not one of %s" %
                         (text, cond, ", ".join(CONDITIONS)))
    return {"addresses": [parts[0]], "nodeName": parts[1],
            "targetRef": {"kind": "Pod", "namespace": "default", "name": parts[2]},
            "conditions": dict(CONDITIONS[cond])}


def objects(a):
    spec = {"type": "ClusterIP", "clusterIP": a.vip, "clusterIPs": [a.vip],
            "ipFamilies": ["IPv4"], "selector": {"app": a.name}, "sessionAffinity": "None",
            "ports": [{"name": "p", "protocol": a.proto, "port": a.port,
                       "targetPort": a.targetport}]}
    if a.node_port is not None:
        if not 30000 <= a.node_port <= 32767:
            raise ValueError("--node-port %d: not in 30000-32767" % a.node_port)
        spec["type"] = "NodePort"
        spec["ports"][0]["nodePort"] = a.node_port
    try:
        extra = json.loads(a.spec) if a.spec else {}
    except ValueError as e:
        raise ValueError("--spec: not JSON: %s" % e)
    if not isinstance(extra, dict):
        raise ValueError("--spec: not a JSON object")
    spec.update(extra)
    svc = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": a.name, "namespace": a.namespace}, "spec": spec}
    if a.status:
        try:
            svc["status"] = json.loads(a.status)
        except ValueError as e:
            raise ValueError("--status: not JSON: %s" % e)
    sl = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
          "metadata": {"name": a.name + "-s1", "namespace": a.namespace,
                       "labels": {"kubernetes.io/service-name": a.name}},
          "addressType": "IPv4",
          "ports": [{"name": "p", "protocol": a.proto, "port": a.targetport}],
          "endpoints": [endpoint(e) for e in a.endpoints]}
    return [svc, sl]


def main():
    ap = argparse.ArgumentParser(description="objects for the namespace cluster")
    ap.add_argument("name")
    ap.add_argument("vip")
    ap.add_argument("port", type=int)
    ap.add_argument("targetport", type=int)
    ap.add_argument("endpoints", nargs="*")
    ap.add_argument("--proto", default="TCP", choices=("TCP", "UDP"))
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--node-port", type=int)
    ap.add_argument("--spec")
    ap.add_argument("--status")
    a = ap.parse_args()
    try:
        print(json.dumps(objects(a)))
    except ValueError as e:
        print("cluster_k8s.py: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
