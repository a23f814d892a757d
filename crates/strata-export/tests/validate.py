#!/usr/bin/env python3
"""Validate API documents (JSON files) against a Swagger 2.0 schema file, strictly.

Usage: validate.py --schema FILE DOC...

Each document is checked against the definition its apiVersion and kind name (the table below);
a kind with no definition in the file is an error. Strict: every schema with `properties` and no
`additionalProperties` gets `additionalProperties: false`, so an unknown or misspelt field fails.
IntOrString and Quantity are widened to what YAML holds (see /work/shared/schemas/README.md).
Exit status 0 when every document is valid; otherwise each error is printed as FILE: PATH: MESSAGE.
"""
import argparse
import json
import sys

import jsonschema

KINDS = {
    ("image.openshift.io/v1", "ImageStream"): "com.github.openshift.api.image.v1.ImageStream",
    ("build.openshift.io/v1", "BuildConfig"): "com.github.openshift.api.build.v1.BuildConfig",
    ("v1", "Service"): "io.k8s.api.core.v1.Service",
    ("apps/v1", "Deployment"): "io.k8s.api.apps.v1.Deployment",
    ("tekton.dev/v1", "Pipeline"): "v1.Pipeline",
    ("tekton.dev/v1", "Task"): "v1.Task",
    ("tekton.dev/v1", "PipelineRun"): "v1.PipelineRun",
    ("tekton.dev/v1", "TaskRun"): "v1.TaskRun",
}


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("docs", nargs="+")
    args = parser.parse_args()
    with open(args.schema) as f:
        definitions = json.load(f)["definitions"]
    strict(definitions)
    for key in list(definitions):
        if key.endswith("apimachinery.pkg.util.intstr.IntOrString"):
            definitions[key] = {"type": ["integer", "string"]}
        if key.endswith("apimachinery.pkg.api.resource.Quantity"):
            definitions[key] = {"type": ["number", "string"]}
    failures = 0
    for path in args.docs:
        with open(path) as f:
            doc = json.load(f)
        key = KINDS.get((doc.get("apiVersion"), doc.get("kind")))
        if key is None or key not in definitions:
            print(f"{path}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in {args.schema}")
            failures += 1
            continue
        schema = {"$ref": f"#/definitions/{key}", "definitions": definitions}
        validator = jsonschema.Draft4Validator(schema)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            print(f"{path}: {where}: {error.message}")
            failures += 1
    if failures:
        print(f"{failures} error(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
