//! What the Entra tests share: a certificate client, a federated (workload identity) client,
//! and a self-signed RSA certificate to register.

pub const CERT_CLIENT: &str = "44444444-4444-4444-8444-444444444444";
pub const FEDERATED_CLIENT: &str = "55555555-5555-4555-8555-555555555555";
pub const CLUSTER_ISSUER: &str = "https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/";
pub const SERVICE_ACCOUNT: &str = "system:serviceaccount:orders:daemon";

/// A self-signed RSA certificate and its key, as PEM.
pub fn rsa_certificate() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let cert = rcgen::CertificateParams::new(vec!["daemon.contoso.com".into()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    (cert.pem(), key.serialize_pem())
}
