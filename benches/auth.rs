//! What bearer-token verification adds to a request. `verify/cached_token` is the common case
//! (a client reuses its token for its lifetime: one SHA-256 and a map lookup);
//! `verify/first_use/<alg>` is a token seen for the first time with its issuer's key cached
//! (header, signature, claims). Run with `cargo bench --bench auth`.

use std::collections::HashMap;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use engraft::auth::jwks::{parse_jwks, CachedJwks};
use engraft::auth::keys::{jwks, SigningKey};
use engraft::auth::verify::{Issuer, Verifier};
use jsonwebtoken::Algorithm;
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("verify");
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::ES256,
        Algorithm::ES384,
    ] {
        let (key, _) = SigningKey::generate("k", alg).unwrap();
        let mut issuers = HashMap::new();
        issuers.insert(
            "https://idp.example".to_string(),
            Issuer {
                algorithms: vec![alg],
                keys: CachedJwks::fixed(parse_jwks(&jwks([&key])).0),
            },
        );
        let v = Verifier::new(issuers, vec!["https://engraft.example".into()], 30);
        let now = jsonwebtoken::get_current_timestamp();
        let token = key
            .sign(&json!({
                "iss": "https://idp.example", "sub": "c", "aud": "https://engraft.example",
                "exp": now + 3600, "iat": now, "scope": "system/*.rs system/RegistryRecord.cruds",
            }))
            .unwrap();
        assert!(rt.block_on(v.verify(&token)).is_ok());
        g.bench_function(format!("first_use/{alg:?}"), |b| {
            b.iter(|| rt.block_on(v.verify_uncached(&token)).unwrap().expires_at)
        });
        if alg == Algorithm::ES384 {
            g.bench_function("cached_token", |b| {
                b.iter(|| rt.block_on(v.verify(&token)).unwrap().expires_at)
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(50);
    targets = bench
}
criterion_main!(benches);
