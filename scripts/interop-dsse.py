#!/usr/bin/env python3
"""Cross-check strata's DSSE envelopes with securesystemslib, an implementation strata did not write.

  interop-dsse.py verify ENVELOPE.json PUBLIC.pem KEYID SUBJECT_SHA256 OWNER
      Verify the envelope's signature with securesystemslib (DSSE PAE, ECDSA P-256 DER / Ed25519)
      against the PEM public key under KEYID, then parse the in-toto Statement v1 and its SLSA v1
      provenance strictly with the in-toto attestation framework's own protobuf schemas
      (in-toto-attestation: unknown or misspelt fields are errors), validate them, and check the
      fields. Prints "verified" and exits 0, or prints why and exits 1.

  interop-dsse.py sign OUTDIR SUBJECT_SHA256
      Sign an in-toto statement about SUBJECT_SHA256 with a fresh ECDSA P-256 key using
      securesystemslib; write OUTDIR/envelope.json and OUTDIR/key.pub (for strata to verify).

Needs: pip install 'securesystemslib[crypto]' in-toto-attestation (scripts/install-test-deps).
"""

import json
import pathlib
import sys

from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey


def fail(message: str) -> None:
    print(f"interop-dsse: {message}")
    sys.exit(1)


def verify(envelope_path: str, pem_path: str, keyid: str, subject: str, owner: str) -> None:
    data = json.loads(pathlib.Path(envelope_path).read_text())
    public = load_pem_public_key(pathlib.Path(pem_path).read_bytes())
    key = SSlibKey.from_crypto(public, keyid=keyid)
    envelope = Envelope.from_dict(data)
    if envelope.payload_type != "application/vnd.in-toto+json":
        fail(f"payloadType is {envelope.payload_type!r}")
    try:
        accepted = envelope.verify([key], 1)
    except Exception as e:  # securesystemslib raises VerificationError
        fail(f"signature does not verify: {e}")
    if keyid not in accepted:
        fail(f"key {keyid} did not verify")

    # The in-toto attestation framework's schemas, strictly: unknown fields are errors.
    try:
        pb = json_format.Parse(envelope.payload, statement_pb2.Statement())
        Statement.copy_from_pb(pb).validate()
        provenance = json_format.Parse(
            json.dumps(json.loads(envelope.payload)["predicate"]), provenance_pb2.Provenance()
        )
        for dep in provenance.build_definition.resolved_dependencies:
            ResourceDescriptor.copy_from_pb(dep).validate()
    except Exception as e:
        fail(f"not an in-toto statement with SLSA v1 provenance: {e}")
    if provenance.run_details.metadata.finished_on.seconds == 0:
        fail("runDetails.metadata.finishedOn did not parse as a timestamp")

    statement = json.loads(envelope.payload)
    if statement.get("_type") != "https://in-toto.io/Statement/v1":
        fail(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != "https://slsa.dev/provenance/v1":
        fail(f"predicateType is {statement.get('predicateType')!r}")
    digests = [s["digest"].get("sha256") for s in statement["subject"]]
    if subject not in digests:
        fail(f"subject digests {digests} do not include {subject}")
    predicate = statement["predicate"]
    build = predicate["buildDefinition"]
    if not build["buildType"].startswith("https://strata.dev/buildtypes/"):
        fail(f"buildType is {build['buildType']!r}")
    if build["internalParameters"]["owner"] != owner:
        fail(f"owner is {build['internalParameters']['owner']!r}")
    for dep in build.get("resolvedDependencies", []):
        if not dep.get("digest"):
            fail(f"dependency {dep} has no digest")
    details = predicate["runDetails"]
    if not details["builder"]["id"]:
        fail("runDetails.builder.id is empty")
    for field in ("invocationId", "startedOn", "finishedOn"):
        if not details["metadata"].get(field):
            fail(f"runDetails.metadata.{field} is missing")
    print("verified")


def sign(outdir: str, subject: str) -> None:
    signer = CryptoSigner.generate_ecdsa()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "localhost/acme/python:latest", "digest": {"sha256": subject}}],
        "predicateType": "https://example.com/test/v1",
        "predicate": {"signedBy": "securesystemslib"},
    }
    envelope = Envelope(
        payload=json.dumps(statement).encode(),
        payload_type="application/vnd.in-toto+json",
        signatures={},
    )
    envelope.sign(signer)
    out = pathlib.Path(outdir)
    out.joinpath("envelope.json").write_text(json.dumps(envelope.to_dict()))
    public = load_pem_public_key(signer.public_key.keyval["public"].encode())
    out.joinpath("key.pub").write_bytes(
        public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    print(signer.public_key.keyid)


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 6 and args[0] == "verify":
        verify(*args[1:])
    elif len(args) == 3 and args[0] == "sign":
        sign(*args[1:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
