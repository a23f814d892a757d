#!/usr/bin/env python3
"""Validate exported Tekton documents against Tekton's v1 swagger, strictly.

usage: validate_tekton.py --schema tekton-pipeline-v1-swagger.json --openshift openshift-openapi.json DOC...

Each DOC is a JSON file holding one object. `tekton.dev/v1` kinds (Pipeline, Task, PipelineRun,
TaskRun) are checked against their `v1.<Kind>` definition; every schema with `properties` and no
`additionalProperties` is made strict (an unknown or misspelt field is an error). The swagger's
missing Kubernetes definitions come from the OpenShift OpenAPI file (schemas/README.md). Kinds the
swagger has no schema for (the triggers API) are printed as `unchecked: FILE KIND` on stdout.
Errors go to stderr as `FILE: PATH: MESSAGE`; the exit code is 1 when there is one.
"""

import argparse
import copy
import json
import sys

import jsonschema

KINDS = {"Pipeline", "Task", "PipelineRun", "TaskRun"}


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


def refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref[len("#/definitions/"):])
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def definitions(tekton, openshift):
    defs = copy.deepcopy(tekton["definitions"])
    k8s = openshift["definitions"]
    # Fill in the Kubernetes types the swagger refers to but does not hold, transitively.
    while True:
        found = set()
        refs(defs, found)
        missing = sorted(k for k in found if k not in defs)
        if not missing:
            break
        for key in missing:
            name = key.split(".", 1)[1] if key.startswith("v1.") else None
            if key in k8s:
                defs[key] = copy.deepcopy(k8s[key])
            elif name and "io.k8s.api.core.v1." + name in k8s:
                defs[key] = {"$ref": "#/definitions/io.k8s.api.core.v1." + name}
            elif name and "io.k8s.apimachinery.pkg.apis.meta.v1." + name in k8s:
                defs[key] = {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1." + name}
            else:
                defs[key] = {}
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["integer", "string"]}
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"type": ["number", "string"]}
    defs["v1.ParamValue"] = {
        "type": ["string", "array", "object"],
        "items": {"type": "string"},
        "additionalProperties": {"type": "string"},
    }
    strict(defs)
    return defs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--openshift", required=True)
    parser.add_argument("docs", nargs="+")
    args = parser.parse_args()
    with open(args.schema) as f:
        tekton = json.load(f)
    with open(args.openshift) as f:
        openshift = json.load(f)
    defs = definitions(tekton, openshift)
    errors = 0
    for path in args.docs:
        with open(path) as f:
            doc = json.load(f)
        kind = doc.get("kind")
        api = doc.get("apiVersion")
        if api != "tekton.dev/v1" or kind not in KINDS:
            print(f"unchecked: {path} {api} {kind}")
            continue
        schema = {"$ref": "#/definitions/v1." + kind, "definitions": defs}
        validator = jsonschema.Draft4Validator(schema)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            print(f"{path}: {where}: {error.message}", file=sys.stderr)
            errors += 1
        if not doc.get("metadata", {}).get("name"):
            print(f"{path}: metadata/name: missing", file=sys.stderr)
            errors += 1
        if not doc.get("spec"):
            print(f"{path}: spec: missing", file=sys.stderr)
            errors += 1
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
