//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse>): a payload, its type, and
//! signatures over the pre-authentication encoding ([`pae`]) of both.
//!
//! strata signs in-toto statements (`payloadType` [`IN_TOTO_PAYLOAD_TYPE`]). The payload and the
//! signatures are standard base64 with padding. ECDSA P-256 signatures are ASN.1 DER over the
//! SHA-256 of the PAE (what securesystemslib, in-toto and cosign verify); Ed25519 signatures are the
//! raw 64 bytes. `keyid` is the signing key's [`KeyId`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::keys::{KeyId, PrivateKey, PublicKey};
use crate::statement::{STATEMENT_TYPE, Statement};

/// `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The payload, base64.
    pub payload: String,
    /// The payload's media type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signing key's id (may be empty in envelopes from other tools).
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

/// The DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Sign `payload` of `payload_type` with `key`.
pub fn sign_payload(payload_type: &str, payload: &[u8], key: &PrivateKey) -> Envelope {
    let sig = key.sign(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![Signature {
            keyid: key.id().to_string(),
            sig: STANDARD.encode(sig),
        }],
    }
}

/// Sign an in-toto statement with `key`: its compact JSON is the payload.
pub fn sign(statement: &Statement, key: &PrivateKey) -> Envelope {
    let payload = serde_json::to_vec(statement).expect("a statement serialises to JSON");
    sign_payload(IN_TOTO_PAYLOAD_TYPE, &payload, key)
}

/// What a verified envelope yields: the statement and the key that signed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The statement.
    pub statement: Statement,
    /// The trusted key whose signature verified.
    pub key_id: KeyId,
}

impl Envelope {
    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, VerifyError> {
        STANDARD
            .decode(&self.payload)
            .map_err(|e| VerifyError::Malformed {
                reason: format!("payload is not base64: {e}"),
            })
    }

    /// The key ids the signatures name.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.signatures
            .iter()
            .map(|s| KeyId::from_string(s.keyid.clone()))
            .collect()
    }

    /// The statement in the payload, WITHOUT checking any signature (for display only).
    pub fn statement_unverified(&self) -> Result<Statement, VerifyError> {
        parse_statement(&self.payload_bytes()?)
    }

    /// Verify: one signature by a key in `trusted` verifies over the PAE, the payload type is
    /// in-toto's and the payload is an in-toto Statement v1.
    ///
    /// A signature is first tried against the trusted key its `keyid` names. DSSE makes `keyid`
    /// an unauthenticated hint (other tools compute it differently, or leave it empty), so when no
    /// named key verifies, every signature is tried against every trusted key: the signature, not
    /// the hint, decides. Errors name a trusted key whose signature failed ([`VerifyError::BadSignature`])
    /// or, when no signature names a trusted key, the key ids found ([`VerifyError::UnknownKey`]).
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<Verified, VerifyError> {
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(VerifyError::WrongPayloadType {
                found: self.payload_type.clone(),
            });
        }
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        let signatures: Vec<(&str, Option<Vec<u8>>)> = self
            .signatures
            .iter()
            .map(|s| (s.keyid.as_str(), STANDARD.decode(&s.sig).ok()))
            .collect();
        let verifies = |key: &PublicKey, sig: &Option<Vec<u8>>| {
            sig.as_deref().is_some_and(|sig| key.verify(&message, sig))
        };
        let mut bad = None;
        // The keys the signatures name.
        for (keyid, sig) in &signatures {
            for key in trusted.iter().filter(|k| k.id().as_str() == *keyid) {
                if verifies(key, sig) {
                    return Ok(Verified {
                        statement: parse_statement(&payload)?,
                        key_id: key.id().clone(),
                    });
                }
                bad.get_or_insert_with(|| key.id().clone());
            }
        }
        // Every trusted key, whatever the hints say.
        for (_, sig) in &signatures {
            if let Some(key) = trusted.iter().find(|k| verifies(k, sig)) {
                return Ok(Verified {
                    statement: parse_statement(&payload)?,
                    key_id: key.id().clone(),
                });
            }
        }
        Err(match bad {
            Some(key_id) => VerifyError::BadSignature { key_id },
            None => VerifyError::UnknownKey {
                key_ids: self.key_ids(),
            },
        })
    }
}

/// Verify `envelope` against `trusted` keys and return its statement.
pub fn verify(envelope: &Envelope, trusted: &[PublicKey]) -> Result<Statement, VerifyError> {
    envelope.verify(trusted).map(|v| v.statement)
}

fn parse_statement(payload: &[u8]) -> Result<Statement, VerifyError> {
    let statement: Statement =
        serde_json::from_slice(payload).map_err(|e| VerifyError::Malformed {
            reason: format!("payload is not an in-toto statement: {e}"),
        })?;
    if statement.type_ != STATEMENT_TYPE {
        return Err(VerifyError::Malformed {
            reason: format!(
                "statement _type is {:?}, expected {STATEMENT_TYPE:?}",
                statement.type_
            ),
        });
    }
    if statement.subject.is_empty() {
        return Err(VerifyError::Malformed {
            reason: "the statement has no subject".into(),
        });
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyKind;
    use crate::statement::Subject;
    use strata_oci::Digest;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
        // Lengths are bytes, not characters.
        assert_eq!(
            pae("t", "é".as_bytes()),
            "DSSEv1 1 t 2 é".as_bytes().to_vec()
        );
    }

    fn statement() -> Statement {
        Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![Subject::image(
                "localhost/acme/app:latest",
                &Digest::of(b"m"),
            )],
            predicate_type: "https://example.com/p".into(),
            predicate: serde_json::json!({"a": 1}),
        }
    }

    #[test]
    fn sign_verify_round_trip_both_kinds() {
        for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
            let key = PrivateKey::generate(kind).unwrap();
            let env = sign(&statement(), &key);
            assert_eq!(env.payload_type, IN_TOTO_PAYLOAD_TYPE);
            assert_eq!(env.signatures[0].keyid, key.id().as_str());
            let json = serde_json::to_string(&env).unwrap();
            assert!(json.contains(r#""payloadType":"application/vnd.in-toto+json""#));
            let back: Envelope = serde_json::from_str(&json).unwrap();
            let verified = back.verify(&[key.public_key().clone()]).unwrap();
            assert_eq!(verified.statement, statement());
            assert_eq!(&verified.key_id, key.id());
        }
    }

    #[test]
    fn each_tamper_is_named() {
        let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let trusted = [key.public_key().clone()];
        let env = sign(&statement(), &key);

        // A changed payload byte.
        let mut payload = env.payload_bytes().unwrap();
        let i = payload.iter().position(|b| *b == b'1').unwrap();
        payload[i] = b'2';
        let mut changed = env.clone();
        changed.payload = STANDARD.encode(&payload);
        assert_eq!(
            changed.verify(&trusted).unwrap_err(),
            VerifyError::BadSignature {
                key_id: key.id().clone()
            }
        );

        // Another key.
        let other = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let err = sign(&statement(), &other).verify(&trusted).unwrap_err();
        assert_eq!(
            err,
            VerifyError::UnknownKey {
                key_ids: vec![other.id().clone()]
            }
        );
        assert!(err.to_string().contains(other.id().as_str()), "{err}");

        // Another key claiming our key id.
        let mut forged = sign(&statement(), &other);
        forged.signatures[0].keyid = key.id().to_string();
        assert!(matches!(
            forged.verify(&trusted),
            Err(VerifyError::BadSignature { .. })
        ));

        // Wrong payload type (the signature covers it too).
        let mut typed = env.clone();
        typed.payload_type = "application/json".into();
        assert!(matches!(
            typed.verify(&trusted),
            Err(VerifyError::WrongPayloadType { .. })
        ));

        // Malformed payloads, correctly signed.
        let not_json = sign_payload(IN_TOTO_PAYLOAD_TYPE, b"{not json", &key);
        assert!(matches!(
            not_json.verify(&trusted),
            Err(VerifyError::Malformed { .. })
        ));
        let mut wrong_type = statement();
        wrong_type.type_ = "https://in-toto.io/Statement/v0.1".into();
        let err = sign(&wrong_type, &key).verify(&trusted).unwrap_err();
        assert!(err.to_string().contains("_type"), "{err}");
        let mut bad_b64 = env.clone();
        bad_b64.payload.insert(0, '!');
        assert!(matches!(
            bad_b64.verify(&trusted),
            Err(VerifyError::Malformed { .. })
        ));

        // No signatures at all.
        let mut unsigned = env.clone();
        unsigned.signatures.clear();
        let err = unsigned.verify(&trusted).unwrap_err();
        assert!(err.to_string().contains("no signature"), "{err}");
    }

    #[test]
    fn key_ids_are_hints_the_signature_decides() {
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let other = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let trusted = [other.public_key().clone(), key.public_key().clone()];
        for keyid in ["", "a key id another tool computed"] {
            let mut env = sign(&statement(), &key);
            env.signatures[0].keyid = keyid.into();
            assert_eq!(&env.verify(&trusted).unwrap().key_id, key.id(), "{keyid:?}");
            // Still refused by keys that did not sign.
            let err = env.verify(&trusted[..1]).unwrap_err();
            assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
        }
    }
}
