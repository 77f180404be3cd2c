//! Bearer tokens and client assertions: the verifier with one issuer's fixed keys. Input is
//! taken as a token as is, and also as header and claims JSON signed with a key the verifier
//! does not trust (so parsing of every part is reached).
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use engraft::auth::jwks::{parse_jwks, CachedJwks};
use engraft::auth::keys::{jwks, SigningKey, ASYMMETRIC};
use engraft::auth::verify::{Issuer, Verifier};
use libfuzzer_sys::fuzz_target;

struct Setup {
    verifier: Verifier,
    stranger: SigningKey,
    runtime: tokio::runtime::Runtime,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let alg = jsonwebtoken::Algorithm::ES256;
        let (trusted, _) = SigningKey::generate("trusted", alg).unwrap();
        let (stranger, _) = SigningKey::generate("trusted", alg).unwrap();
        let keys = parse_jwks(&jwks([&trusted])).0;
        let mut issuers = HashMap::new();
        issuers.insert(
            "https://idp.example".to_string(),
            Issuer {
                algorithms: ASYMMETRIC.to_vec(),
                keys: CachedJwks::fixed(keys),
            },
        );
        Setup {
            verifier: Verifier::new(issuers, vec!["https://engraft.example".into()], 30),
            stranger,
            runtime: tokio::runtime::Builder::new_current_thread().build().unwrap(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    if let Ok(token) = std::str::from_utf8(data) {
        let r = s.runtime.block_on(s.verifier.verify_uncached(token));
        assert!(r.is_err(), "an unsigned fuzz input was accepted");
    }
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(token) = s.stranger.sign(&claims) {
            let r = s.runtime.block_on(s.verifier.verify_uncached(&token));
            assert!(r.is_err(), "a token from an untrusted key was accepted");
        }
    }
});
