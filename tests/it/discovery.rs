//! `Authority::discover` on the fake tenant's own metadata, in every authority kind and every
//! B2C URL form (issue 26, item 2). Before: B2C's issuers end in a slash, and discovery refused
//! the fake tenant's B2C metadata.

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{authority::AuthorityKind, authority::PolicyForm, Authority};

#[tokio::test]
async fn discovery_accepts_every_kind_of_the_fake_tenant() {
    let b2c = FakeTenant::start().await.unwrap();
    for form in [PolicyForm::Path, PolicyForm::Query, PolicyForm::Tfp] {
        let authority = b2c
            .authority_builder(defaults::SIGNIN_POLICY)
            .policy_form(form)
            .build()
            .unwrap();
        let metadata = authority.metadata_endpoint().expect("a metadata URL").to_string();
        let discovered = Authority::discover(&metadata)
            .await
            .unwrap_or_else(|e| panic!("{form:?}: {metadata}: {e}"));
        assert_eq!(discovered.kind(), AuthorityKind::B2c, "{form:?}");
        assert!(
            discovered.issuer().is_some_and(|issuer| issuer.ends_with('/')),
            "{form:?}"
        );
    }
    for kind in [AuthorityKind::ExternalId, AuthorityKind::Entra] {
        let tenant = FakeTenant::builder().kind(kind).start().await.unwrap();
        let authority = tenant.tenant_authority().unwrap();
        let metadata = authority.metadata_endpoint().expect("a metadata URL").to_string();
        let discovered = Authority::discover(&metadata)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {metadata}: {e}"));
        assert!(
            discovered.token_endpoint().path().ends_with("/oauth2/v2.0/token"),
            "{kind:?}: {}",
            discovered.token_endpoint()
        );
    }
}
