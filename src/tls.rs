//! TLS for every outbound client (OneRoster, the SMS gateway, SMTP): rustls with the `ring`
//! provider.

/// Installs rustls's `ring` provider as the process default (once; later calls and an
/// already installed provider are fine).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
