//! Outbound HTTP, shared by the token providers and the sync clients: what a transport
//! failure tells the engineer, without the URL's query or anything from the request.

/// A transport error as an actionable sentence: a timeout, a refused connection, a name that
/// does not resolve, or a TLS failure with the certificate problem named.
pub fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return tls_error(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                _ => {}
            }
            // hyper-rustls wraps the TLS error in io::Errors, whose `source()` skips the
            // error they wrap: look inside.
            if let Some(inner) = io.get_ref() {
                source = Some(inner);
                continue;
            }
        }
        let text = err.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return "the host name does not resolve".into();
        }
        source = err.source();
    }
    if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

fn tls_error(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "issued by a CA Engraft does not trust".to_string(),
                C::Expired | C::ExpiredContext { .. } => "expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "not issued for this host name".into()
                }
                C::Revoked => "revoked".into(),
                C::BadSignature => "badly signed".into(),
                other => format!("{other:?}"),
            };
            format!(
                "TLS: the server's certificate was refused ({why}); for a private CA, give the \
                 destination a ca_bundle or add the CA to the system trust store"
            )
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_problems_are_named() {
        let unknown = tls_error(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(unknown.contains("issued by a CA Engraft does not trust"));
        assert!(unknown.contains("ca_bundle"));
        let expired = tls_error(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
        assert!(expired.contains("(expired)"));
        assert!(tls_error(&rustls::Error::DecryptError).starts_with("TLS handshake failed"));
    }
}
