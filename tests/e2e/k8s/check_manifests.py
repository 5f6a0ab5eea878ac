#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_manifests.py - static checks of scripts/k8s/ (no cluster needed).

Contract: prints one "PASS: e2e/k8s_manifests_<name>" or
"FAIL: e2e/k8s_manifests_<name>: <problems>" line per check and exits
non-zero if any failed. Checks: every YAML document parses and names its
apiVersion/kind/metadata; the DaemonSet has what a node agent needs (host
network, selector matching the template, service account, bpffs + cgroup2 +
/run/sluice host mounts, a capability list instead of privileged, probes,
Prometheus annotations, every mount backed by a volume, httpGet probes on
the metrics port: /healthz for startup and liveness, /readyz for
readiness); RBAC grants exactly get/list/watch on services and
endpointslices (nothing meshd does not use); the
ConfigMap's meshd.yaml uses only meshd's flags (from `MESHD --help` when
given) with paths inside the mounted volumes; the Containerfile builds
Debian 12 images with the binaries the DaemonSet runs, and its runtime
stage installs the Debian package of every shared library the built
binaries need (readelf -d NEEDED -> ldconfig -p -> dpkg -S), except those
every Debian image has (Essential packages and their dependencies).
Usage: check_manifests.py K8S_DIR [MESHD]
"""
import glob
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("FAIL: e2e/k8s_manifests_yaml: python3-yaml is missing "
          "(scripts/install-deps.sh installs it)")
    sys.exit(1)

CAPS_NEEDED = {"BPF", "NET_ADMIN"}
CAPS_ALLOWED = {"BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace"}

failed = 0


def report(name, problems):
    global failed
    if problems:
        failed += 1
        print("FAIL: e2e/k8s_manifests_%s: %s" % (name, "; ".join(problems)))
    else:
        print("PASS: e2e/k8s_manifests_%s" % name)


def get(d, *path, default=None):
    for p in path:
        if isinstance(d, dict) and p in d:
            d = d[p]
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return default
    return d


def load_all(k8s_dir):
    docs, problems = [], []
    files = sorted(glob.glob(os.path.join(k8s_dir, "*.yaml")))
    if not files:
        problems.append("no *.yaml in %s" % k8s_dir)
    for f in files:
        try:
            with open(f) as fh:
                for d in yaml.safe_load_all(fh):
                    if d is None:
                        continue
                    where = "%s: %s/%s" % (os.path.basename(f), d.get("kind"),
                                           get(d, "metadata", "name"))
                    for key in ("apiVersion", "kind"):
                        if not d.get(key):
                            problems.append("%s: no %s" % (where, key))
                    if not get(d, "metadata", "name"):
                        problems.append("%s: no metadata.name" % where)
                    if d.get("kind") not in CLUSTER_SCOPED and not get(d, "metadata", "namespace"):
                        problems.append("%s: namespaced kind without a namespace" % where)
                    docs.append(d)
        except yaml.YAMLError as e:
            problems.append("%s: %s" % (os.path.basename(f), str(e).replace("\n", " ")))
    return docs, problems


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    return found[0] if len(found) == 1 else None


def check_daemonset(docs):
    p = []
    ds = one(docs, "DaemonSet")
    if not ds:
        return ["want exactly one DaemonSet"], None
    if ds.get("apiVersion") != "apps/v1":
        p.append("apiVersion %r is not apps/v1" % ds.get("apiVersion"))
    ns = get(ds, "metadata", "namespace")
    sel = get(ds, "spec", "selector", "matchLabels") or {}
    labels = get(ds, "spec", "template", "metadata", "labels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        p.append("spec.selector.matchLabels %r does not match the template labels %r" %
                 (sel, labels))
    pod = get(ds, "spec", "template", "spec") or {}
    if pod.get("hostNetwork") is not True:
        p.append("hostNetwork is not true")
    if pod.get("dnsPolicy") != "ClusterFirstWithHostNet":
        p.append("dnsPolicy should be ClusterFirstWithHostNet with hostNetwork")
    sa = pod.get("serviceAccountName")
    if not any(d.get("kind") == "ServiceAccount" and get(d, "metadata", "name") == sa and
               get(d, "metadata", "namespace") == ns for d in docs):
        p.append("serviceAccountName %r is not a ServiceAccount in %s" % (sa, ns))
    if not pod.get("tolerations"):
        p.append("no tolerations: tainted nodes would get no agent")
    ann = get(ds, "spec", "template", "metadata", "annotations") or {}
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "9465":
        p.append("Prometheus annotations scrape=\"true\", port=\"9465\" missing")
    if get(ds, "spec", "updateStrategy", "type") not in (None, "RollingUpdate"):
        p.append("updateStrategy is not RollingUpdate")

    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    host_paths = {get(v, "hostPath", "path"): n for n, v in volumes.items() if "hostPath" in v}
    for path in ("/sys/fs/bpf", "/sys/fs/cgroup", "/run/sluice"):
        if path not in host_paths:
            p.append("no hostPath volume for %s" % path)
    containers = pod.get("containers") or []
    meshd = next((c for c in containers if c.get("name") == "meshd"), None)
    if not meshd:
        return p + ["no container named meshd"], ds
    for c in containers + (pod.get("initContainers") or []):
        privileged = get(c, "securityContext", "privileged") is True
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                p.append("%s mounts unknown volume %r" % (c.get("name"), m.get("name")))
            if m.get("mountPropagation") == "Bidirectional" and not privileged:
                p.append("%s: Bidirectional propagation needs a privileged container" %
                         c.get("name"))
        if not c.get("image"):
            p.append("%s has no image" % c.get("name"))
    sc = meshd.get("securityContext") or {}
    if sc.get("privileged"):
        p.append("meshd is privileged: use the capability list")
    caps = set(get(sc, "capabilities", "add") or [])
    if not CAPS_NEEDED <= caps:
        p.append("capabilities %s lack %s" % (sorted(caps), sorted(CAPS_NEEDED - caps)))
    if caps - CAPS_ALLOWED:
        p.append("unexpected capabilities %s" % sorted(caps - CAPS_ALLOWED))
    if "ALL" not in (get(sc, "capabilities", "drop") or []):
        p.append("capabilities.drop should be [ALL]")
    # kubelet asks meshd itself over HTTP (the metrics server): alive is
    # /healthz, ready for traffic is /readyz; no exec of meshctl per probe
    ports = {pt.get("name"): pt.get("containerPort") for pt in meshd.get("ports") or []}
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        hg = get(meshd, probe, "httpGet")
        if not hg:
            p.append("%s is not an httpGet probe" % probe)
            continue
        port = hg.get("port")
        if hg.get("path") != path or (ports.get(port) or port) != 9465:
            p.append("%s asks %s on port %r, want %s on the metrics port 9465" %
                     (probe, hg.get("path"), port, path))
    mounts = {m.get("mountPath"): m for m in meshd.get("volumeMounts") or []}
    bpf = mounts.get("/sys/fs/bpf")
    if not bpf or volumes.get(bpf.get("name"), {}).get("hostPath", {}).get("path") != "/sys/fs/bpf":
        p.append("meshd does not mount the host's /sys/fs/bpf at /sys/fs/bpf")
    return p, ds


def check_rbac(docs):
    p = []
    role = one(docs, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding")
    if not role or not binding:
        return ["want one ClusterRole and one ClusterRoleBinding"]
    granted = set()
    for r in role.get("rules") or []:
        verbs = set(r.get("verbs") or [])
        if verbs != {"get", "list", "watch"}:
            p.append("rule %r: verbs must be exactly get/list/watch" % r)
        for g in r.get("apiGroups") or []:
            for res in r.get("resources") or []:
                granted.add((g, res))
    want = {("", "services"), ("discovery.k8s.io", "endpointslices")}
    if granted != want:
        p.append("grants %s, want exactly %s" % (sorted(granted), sorted(want)))
    ref = binding.get("roleRef") or {}
    if ref.get("kind") != "ClusterRole" or ref.get("name") != get(role, "metadata", "name"):
        p.append("the binding does not refer to the ClusterRole")
    sa = one(docs, "ServiceAccount")
    subj = binding.get("subjects") or []
    if not sa or not any(s.get("kind") == "ServiceAccount" and
                         s.get("name") == get(sa, "metadata", "name") and
                         s.get("namespace") == get(sa, "metadata", "namespace") for s in subj):
        p.append("the binding's subjects do not name the ServiceAccount")
    return p


def meshd_flags(meshd):
    if not meshd or not os.access(meshd, os.X_OK):
        return None
    out = subprocess.run([meshd, "--help"], capture_output=True, text=True, timeout=10)
    return set(re.findall(r"--([a-z][a-z0-9-]*)", out.stdout + out.stderr))


def under(path, mounts):
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def check_configmap(docs, ds, meshd):
    p = []
    cms = [d for d in docs if d.get("kind") == "ConfigMap"]
    pod = get(ds, "spec", "template", "spec") or {}
    cm_names = {get(v, "configMap", "name") for v in pod.get("volumes") or [] if "configMap" in v}
    cm = next((c for c in cms if get(c, "metadata", "name") in cm_names), None)
    if not cm:
        return ["no ConfigMap mounted by the DaemonSet"]
    text = get(cm, "data", "meshd.yaml")
    if not text:
        return ["ConfigMap has no data.meshd.yaml"]
    try:
        conf = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        return ["meshd.yaml: %s" % str(e).replace("\n", " ")]
    for k, v in conf.items():
        if not isinstance(v, str):
            p.append("%s: %r is not a string (quote it)" % (k, v))
    meshd_c = next((c for c in pod.get("containers") or [] if c.get("name") == "meshd"), {})
    mounts = [m.get("mountPath") for m in meshd_c.get("volumeMounts") or []]
    cmd = " ".join(meshd_c.get("command") or []) + " " + " ".join(meshd_c.get("args") or [])
    cm_volumes = {v.get("name") for v in pod.get("volumes") or [] if "configMap" in v}
    cfg_path = next((m.get("mountPath") + "/meshd.yaml"
                     for m in meshd_c.get("volumeMounts") or [] if m.get("name") in cm_volumes),
                    None)
    if not cfg_path or "--config " + cfg_path not in cmd:
        p.append("meshd is not started with --config %s" % cfg_path)
    port = get(ds, "spec", "template", "metadata", "annotations", "prometheus.io/port")
    if "metrics" in conf and not str(conf["metrics"]).endswith(":%s" % port):
        p.append("metrics %r does not serve the annotated port %s" % (conf["metrics"], port))
    for key in ("state", "socket", "bpffs", "cgroup"):
        if key in conf and not under(conf[key], mounts):
            p.append("%s %s is not inside a mounted volume %s" % (key, conf[key], mounts))
    flags = meshd_flags(meshd)
    if flags is None:
        print("  (meshd not built: config keys not checked against meshd --help)")
    else:
        unknown = sorted(set(conf) - flags)
        if unknown:
            p.append("keys %s are not meshd flags (meshd --help); the Kubernetes sync "
                     "(user/lib/k8s.h) must be wired into meshd as --kubernetes" % unknown)
    return p


def check_containerfile(k8s_dir, ds):
    p = []
    path = os.path.join(k8s_dir, "Containerfile")
    try:
        text = open(path).read()
    except OSError:
        return ["no %s" % path]
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if not froms or not all(re.search(r"debian:12", f) for f in froms):
        p.append("every stage should be Debian 12, got %s" % froms)
    if not re.search(r"^RUN .*make\b.*build/meshd", text, re.M):
        p.append("does not build build/meshd with the Makefile")
    pod = get(ds, "spec", "template", "spec") or {}
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            for arg in get(c, probe, "exec", "command") or []:
                if arg.startswith("/usr/local/bin/") and os.path.basename(arg) not in text:
                    p.append("%s runs %s, which the image does not install" % (probe, arg))
        binary = (c.get("command") or [""])[0]
        if binary.startswith("/usr/local/bin/") and os.path.basename(binary) not in text:
            p.append("%s runs %s, which the image does not install" % (c.get("name"), binary))
    return p


def runtime_packages(text):
    """The packages `apt-get install` names in the last stage."""
    last = text[text.rfind("\nFROM "):] if "\nFROM " in text else text
    joined = re.sub(r"\\\n", " ", last)
    pkgs = set()
    for m in re.finditer(r"apt-get install ([^&;\n]*)", joined):
        pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def library_package(soname, ldcache):
    """The Debian package that ships soname on this (Debian 12) build host."""
    path = ldcache.get(soname)
    if not path:
        return None, "%s is not in the linker cache (ldconfig -p)" % soname
    for cand in (path, os.path.realpath(path), "/usr" + path if path.startswith("/lib") else path):
        out = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip(), None
    return None, "no Debian package ships %s (dpkg -S)" % path


def essential_closure():
    """Packages every Debian image has: the Essential ones and what they
    (pre-)depend on, transitively, as installed on this Debian 12 host."""
    out = subprocess.run(["dpkg-query", "-W", "-f",
                          "${Package}\t${Essential}\t${Pre-Depends}, ${Depends}\n"],
                         capture_output=True, text=True).stdout
    deps, todo = {}, []
    for line in out.splitlines():
        name, essential, rel = (line.split("\t") + ["", ""])[:3]
        deps[name] = [alt.split()[0].split(":")[0] for alt in
                      (a.split("|")[0].strip() for a in rel.split(",")) if alt]
        if essential == "yes":
            todo.append(name)
    closure = set()
    while todo:
        name = todo.pop()
        if name in closure or name not in deps:
            continue
        closure.add(name)
        todo.extend(deps[name])
    return closure


def check_image_libraries(k8s_dir, build_dir):
    p = []
    try:
        text = open(os.path.join(k8s_dir, "Containerfile")).read()
    except OSError as e:
        return [str(e)]
    ldcache = {}
    for line in subprocess.run(["ldconfig", "-p"], capture_output=True,
                               text=True).stdout.splitlines():
        m = re.match(r"\s*(\S+) \(libc6,x86-64[^)]*\) => (\S+)", line)
        if m:
            ldcache.setdefault(m.group(1), m.group(2))
    installed = runtime_packages(text)
    base = essential_closure()
    seen = set()
    for binary in ("meshd", "meshctl"):
        path = os.path.join(build_dir, binary)
        if not os.path.exists(path):
            p.append("%s is not built: cannot derive its libraries" % path)
            continue
        out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True)
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout):
            pkg, err = library_package(soname, ldcache)
            if err:
                p.append(err)
                continue
            if pkg in seen:
                continue
            seen.add(pkg)
            if pkg in base:
                continue  # in every Debian image, slim included
            if pkg not in installed:
                p.append("%s needs %s (package %s), which the runtime stage does not install" %
                         (binary, soname, pkg))
    print("  runtime packages needed: %s; installed: %s" % (sorted(seen), sorted(installed)))
    return p


def main():
    k8s_dir = sys.argv[1]
    meshd = sys.argv[2] if len(sys.argv) > 2 else None
    docs, problems = load_all(k8s_dir)
    report("yaml", problems)
    p, ds = check_daemonset(docs)
    report("daemonset", p)
    report("rbac", check_rbac(docs))
    report("configmap", check_configmap(docs, ds, meshd) if ds else ["no DaemonSet"])
    report("containerfile", check_containerfile(k8s_dir, ds) if ds else ["no DaemonSet"])
    report("image_libraries",
           check_image_libraries(k8s_dir, os.path.dirname(meshd)) if meshd else
           ["no MESHD given: the built binaries' libraries cannot be checked"])
    # the install section lives in the top-level README
    readme = os.path.join(k8s_dir, "..", "..", "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    report("readme", [] if "kubectl apply -f scripts/k8s/" in text and "sluice.io/weights" in text
           else ["README.md lacks the Kubernetes apply command or the weights annotation"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
