#!/usr/bin/env python3
"""Keeps openapi.yaml true.

1. Validates the document as OpenAPI 3.1.
2. Starts the built sriovd on a fresh simulated host, drives every operation (successes and errors), and
   checks each response's status, content type and body against the operation's schema in the document.
   Any response the document does not describe is a failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = yaml.safe_load(open(os.path.join(ROOT, "openapi.yaml")))
validate(SPEC)
print("openapi.yaml: valid OpenAPI 3.1")



def schema_for(template, method, status, content_type):
    operation = SPEC["paths"][template][method.lower()]
    response = operation["responses"].get(str(status))
    if response is None:
        raise AssertionError(f"{method} {template}: status {status} is not documented")
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].split("/")[-1]]
    content = response.get("content")
    if content is None:
        return None
    if content_type not in content:
        raise AssertionError(f"{method} {template} {status}: content type {content_type} not documented")
    return content[content_type]["schema"]


def check(template, method, status, content_type, body):
    schema = schema_for(template, method, status, content_type)
    if schema is None:
        assert body == b"", f"{method} {template} {status}: body where none is documented"
        return
    if content_type.endswith("json"):
        root = dict(SPEC, x=schema)
        registry = Registry().with_resource("urn:spec", DRAFT202012.create_resource(root))
        validator = Draft202012Validator({"$ref": "urn:spec#/x"}, registry=registry)
        # NDJSON: every line is one document of the schema.
        if content_type == "application/x-ndjson":
            documents = [json.loads(line) for line in body.splitlines()]
            assert documents, f"{method} {template} {status}: an empty NDJSON stream"
        else:
            documents = [json.loads(body)]
        for document in documents:
            errors = list(validator.iter_errors(document))
            if errors:
                raise AssertionError(f"{method} {template} {status}: {errors[0].message} at {list(errors[0].path)}")


def docker_call(socket_path, name, body):
    """One Docker remote driver call over the plugin socket, as dockerd makes it (no Content-Type)."""
    import http.client
    import socket as sockets

    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
            self.sock.connect(socket_path)

    connection = Unix("localhost")
    connection.request("POST", "/NetworkDriver." + name, body=json.dumps(body).encode())
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    assert response.status == 200, f"{name}: {response.status} {payload!r}"
    return json.loads(payload)


def main():
    binary = os.path.join(ROOT, ".build", "debug", "sriovd")
    folder = tempfile.mkdtemp(prefix="sriovd-contract-")
    process = subprocess.Popen(
        [binary, "serve", "--simulate", folder, "--listen", "127.0.0.1:0", "--log-level", "error",
         "--docker-plugin", os.path.join(folder, "docker.sock")],
        stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://([\d.]+:\d+)", line)
        assert match, f"sriovd did not print its address: {line!r}"
        base = "http://" + match.group(1)
        count = 0

        def call(method, path, template, body=None, headers=None):
            nonlocal count
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
            if data is not None and "Content-Type" not in (headers or {}):
                request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request) as response:
                    status, ctype, payload = response.status, response.headers.get("Content-Type", ""), response.read()
            except urllib.error.HTTPError as error:
                status, ctype, payload = error.code, error.headers.get("Content-Type", ""), error.read()
            check(template, method, status, ctype.split(";")[0], payload)
            count += 1
            return status, json.loads(payload) if payload and "json" in ctype and "ndjson" not in ctype else None

        import time
        for _ in range(50):
            if call("GET", "/readyz", "/readyz")[0] == 200:
                break
            time.sleep(0.1)
        call("GET", "/healthz", "/healthz")
        call("GET", "/openapi.yaml", "/openapi.yaml")
        _, pfs = call("GET", "/pfs", "/pfs")
        call("GET", "/pfs?vendor_id=8086&numa_node=0", "/pfs")
        call("GET", "/pfs?numa_node=x", "/pfs")
        e810 = next(p["address"] for p in pfs["items"] if p["device_id"] == "159b")
        call("GET", f"/pfs/{e810}", "/pfs/{address}")
        call("GET", "/pfs/0000:ee:00.0", "/pfs/{address}")
        call("GET", "/pfs/bad", "/pfs/{address}")
        assert call("POST", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs", {"count": 4})[0] == 201
        assert call("POST", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs", {"count": 4})[0] == 200
        call("POST", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs", {"count": 4096})
        call("POST", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs", b"{oops")
        call("GET", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs")
        _, vfs = call("GET", "/vfs", "/vfs")
        call("GET", f"/vfs?pf={e810}", "/vfs")
        call("GET", f"/vfs/{vfs['items'][0]['address']}", "/vfs/{address}")
        call("GET", "/vfs/0000:ee:00.1", "/vfs/{address}")
        status, allocation = call("POST", "/allocations", "/allocations",
                                  {"owner": "vm:a", "pf": e810, "labels": {"a": "b"},
                                   "config": {"mac": "02:00:00:00:00:01", "vlan": 10, "qos": 1}},
                                  {"Idempotency-Key": "contract-1"})
        assert status == 201, status
        call("POST", "/allocations", "/allocations", {"owner": "vm:b"})
        call("POST", "/allocations", "/allocations", {"owner": "vm:b", "pf": "0000:ee:00.0"})
        call("POST", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs", {"count": 2})
        call("GET", "/allocations?state=all&limit=1", "/allocations")
        call("GET", "/allocations?state=bogus", "/allocations")
        call("GET", f"/allocations/{allocation['id']}", "/allocations/{id}")
        call("PATCH", f"/allocations/{allocation['id']}", "/allocations/{id}", {"vlan": 11})
        call("PATCH", f"/allocations/{allocation['id']}", "/allocations/{id}", {"vlan": 99999})
        merge_patch = {"Content-Type": "application/merge-patch+json"}
        assert call("PATCH", f"/allocations/{allocation['id']}", "/allocations/{id}", {"vlan": 12}, merge_patch)[0] == 200
        text = {"Content-Type": "text/plain"}
        assert call("PATCH", f"/allocations/{allocation['id']}", "/allocations/{id}", {"vlan": 13}, text)[0] == 415
        assert call("POST", "/allocations", "/allocations", {"owner": "vm:c", "pf": e810}, text)[0] == 415
        assert call("POST", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs", {"count": 3}, text)[0] == 415
        # Without a tokens file: a rebound Host and a foreign Origin are refused (403).
        assert call("GET", "/pfs", "/pfs", headers={"Host": "evil.example:8080"})[0] == 403
        assert call("POST", "/allocations", "/allocations", {"owner": "vm:c", "pf": e810},
                    {"Origin": "http://evil.example"})[0] == 403
        free_vf = vfs["items"][-1]["address"]
        call("PATCH", f"/vfs/{free_vf}", "/vfs/{address}", {"trust": True})
        call("PATCH", f"/vfs/{free_vf}", "/vfs/{address}", {"trusted": True})
        assert call("PATCH", f"/vfs/{free_vf}", "/vfs/{address}", {"trust": False}, text)[0] == 415
        call("GET", "/reconcile", "/reconcile")
        call("POST", "/reconcile?dry_run=true", "/reconcile", b"")
        attachment = f"/allocations/{allocation['id']}/attachment"
        put = {"netns": "/run/netns/pod-1", "ifname": "net1", "original_ifname": "ens785f0v0", "original_mtu": 1500}
        assert call("PUT", attachment, "/allocations/{id}/attachment", put)[0] == 200
        assert call("PUT", attachment, "/allocations/{id}/attachment", dict(put, ifname="a/b"))[0] == 422
        assert call("PUT", attachment, "/allocations/{id}/attachment", {"netns": 1})[0] in (400, 422)
        call("GET", f"/allocations/{allocation['id']}", "/allocations/{id}")
        assert call("DELETE", attachment, "/allocations/{id}/attachment")[0] == 200
        assert call("PUT", "/allocations/unknown/attachment", "/allocations/{id}/attachment", put)[0] == 404
        assert call("DELETE", f"/allocations/{allocation['id']}", "/allocations/{id}")[0] == 204
        assert call("DELETE", f"/allocations/{allocation['id']}", "/allocations/{id}")[0] == 404
        assert call("DELETE", attachment, "/allocations/{id}/attachment")[0] == 404
        call("GET", "/allocations/unknown", "/allocations/{id}")
        assert call("DELETE", f"/pfs/{e810}/vfs", "/pfs/{address}/vfs")[0] == 204
        call("GET", "/audit?limit=500", "/audit")
        call("GET", "/audit?format=ndjson", "/audit")
        call("GET", "/audit?format=ndjson&limit=5", "/audit")
        call("GET", "/audit?format=xml", "/audit")
        call("GET", "/audit?since=nope", "/audit")
        # Capacity, placement, quotas and leases (issue 17).
        call("GET", "/capacity", "/capacity")
        assert call("PUT", "/quotas/vm%3A", "/quotas/{owner_prefix}", {"max_vfs": 2, "per_numa_node": {"1": 1}})[0] == 200
        call("PUT", "/quotas/vm%3A", "/quotas/{owner_prefix}", {"max_vfs": -1})
        call("PUT", "/quotas/vm%3A", "/quotas/{owner_prefix}", b"{oops")
        call("GET", "/quotas", "/quotas")
        status, leased = call("POST", "/allocations", "/allocations",
                              {"owner": "vm:bond-a", "labels": {"bond": "b1"}, "lease_seconds": 600,
                               "selector": {"placement": "spread", "prefer_numa_node": 1,
                                            "anti_affinity": {"label": "bond"}}})
        assert status == 201, status
        assert call("POST", "/allocations", "/allocations",
                    {"owner": "vm:bond-b", "labels": {"bond": "b1"},
                     "selector": {"driver": "mlx5_core", "anti_affinity": {"label": "bond"}}})[0] == 409
        assert call("POST", "/allocations", "/allocations", {"owner": "vm:c", "selector": {"numa_node": 1}})[0] == 409
        assert call("POST", f"/allocations/{leased['id']}/renew", "/allocations/{id}/renew",
                    {"lease_seconds": 1200})[0] == 200
        call("POST", f"/allocations/{leased['id']}/renew", "/allocations/{id}/renew", {"lease_seconds": 0})
        call("POST", "/allocations/unknown/renew", "/allocations/{id}/renew", b"")
        assert call("DELETE", "/quotas/vm%3A", "/quotas/{owner_prefix}")[0] == 204
        assert call("DELETE", "/quotas/vm%3A", "/quotas/{owner_prefix}")[0] == 404
        # Docker networks (issue 15): made over the plugin socket as dockerd does, then read and released here.
        _, pfs = call("GET", "/pfs", "/pfs")
        with_vfs = next(p["address"] for p in pfs["items"] if p["num_vfs"] > 0)
        docker_call(os.path.join(folder, "docker.sock"), "CreateNetwork",
                    {"NetworkID": "n1", "Options": {"com.docker.network.generic": {"pf": with_vfs, "vlan": "7"}},
                     "IPv4Data": [{"Pool": "10.5.0.0/24", "Gateway": "10.5.0.1/24"}]})
        docker_call(os.path.join(folder, "docker.sock"), "CreateEndpoint", {"NetworkID": "n1", "EndpointID": "e1"})
        _, networks = call("GET", "/docker/networks", "/docker/networks")
        assert networks["items"][0]["endpoints"][0]["allocation_state"] == "active", networks
        endpoint = "/docker/networks/{network}/endpoints/{endpoint}"
        assert call("DELETE", "/docker/networks/n1/endpoints/e1", endpoint)[0] == 204
        assert call("DELETE", "/docker/networks/n1/endpoints/e1", endpoint)[0] == 404
        call("GET", "/docker/networks", "/docker/networks")
        print(f"live server: {count} responses conform to openapi.yaml")
    finally:
        process.terminate()
        code = process.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)
        assert code == 0, f"sriovd exited {code} on SIGTERM"


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print(f"FAIL: {error}", file=sys.stderr)
        sys.exit(1)
