//! Validation rules end to end, over real HTTPS against a SoftHSM token: IP identifiers
//! (RFC 8738), CAA refusing issuance (RFC 8659), and authorization deactivation (RFC 8555
//! §7.5.2) making the order invalid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::acme::{openssl, order, running};
use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_address_is_validated_over_http01_and_lands_in_an_ip_san() {
    let (s, _server, account) = running("").await;

    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let identifiers = [Identifier::Ip(ip)];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.unwrap();
        // RFC 8738 §7: never dns-01 for an address.
        let offered: Vec<ChallengeType> =
            authz.challenges.iter().map(|c| c.r#type.clone()).collect();
        assert!(!offered.contains(&ChallengeType::Dns01), "{offered:?}");
        let mut challenge = authz.challenge(ChallengeType::Http01).unwrap();
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        s.tokens
            .lock()
            .unwrap()
            .insert(challenge.token.clone(), key_authorization);
        challenge.set_ready().await.unwrap();
    }
    assert_eq!(
        order.poll_ready(&RetryPolicy::default()).await.unwrap(),
        OrderStatus::Ready
    );
    order.finalize().await.unwrap();
    let chain = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    let path = s.token.dir.join("ip.pem");
    std::fs::write(&path, chain).unwrap();
    let text = openssl(&["x509", "-noout", "-text", "-in"], Some(&path));
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert!(!text.contains("DNS:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_for_another_ca_makes_the_challenge_invalid_with_a_caa_problem() {
    let (s, _server, account) = running("").await;

    // The http-01 answer is right; only CAA stands in the way.
    let (mut refused, failures) = order(
        &account,
        &s.tokens,
        &["caa-forbidden.validation.test"],
        |ka| ka.to_owned(),
    )
    .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("caa"), "{failures:?}");
    let state = refused.refresh().await.unwrap();
    assert_eq!(state.status, OrderStatus::Invalid);
    let error = format!("{:?}", state.error);
    assert!(error.contains("other-ca.example"), "{error}");

    // A name without CAA records is issued as usual.
    let (mut allowed, failures) = order(&account, &s.tokens, &["caa-free.validation.test"], |ka| {
        ka.to_owned()
    })
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        allowed.poll_ready(&RetryPolicy::default()).await.unwrap(),
        OrderStatus::Ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_authorization_makes_its_order_invalid() {
    let (_s, _server, account) = running("").await;

    let identifiers = [Identifier::Dns("deactivate.validation.test".into())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    let mut authorizations = order.authorizations();
    let mut authz = authorizations.next().await.unwrap().unwrap();
    assert_eq!(authz.status, AuthorizationStatus::Pending);
    let state = authz.deactivate().await.unwrap();
    assert_eq!(state.status, AuthorizationStatus::Deactivated);
    assert_eq!(order.refresh().await.unwrap().status, OrderStatus::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_authorization_is_reused_only_when_the_profile_allows() {
    for (reuse_hours, reused) in [(0, false), (1, true)] {
        let (s, _server, account) = running(&format!("authz_reuse_hours = {reuse_hours}\n")).await;
        let (mut first, failures) = order(&account, &s.tokens, &["reuse.validation.test"], |ka| {
            ka.to_owned()
        })
        .await;
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(
            first.poll_ready(&RetryPolicy::default()).await.unwrap(),
            OrderStatus::Ready
        );
        let identifiers = [Identifier::Dns("reuse.validation.test".into())];
        let mut second = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .unwrap();
        let expected = if reused {
            OrderStatus::Ready
        } else {
            OrderStatus::Pending
        };
        assert_eq!(second.state().status, expected, "reuse {reuse_hours} h");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_published_after_validation_is_honoured_at_finalize() {
    // Recheck every authorization validated before this second (BR §3.2.2.8 allows 8 h).
    let (s, _server, account) = running("caa_recheck_hours = 0\n").await;
    let name = "caa-late.validation.test";
    let (mut order, failures) = order(&account, &s.tokens, &[name], |ka| ka.to_owned()).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        order.poll_ready(&RetryPolicy::default()).await.unwrap(),
        OrderStatus::Ready
    );
    // The domain holder now authorizes another CA only.
    s.dns.lock().unwrap().caa_other_ca.insert(name.into());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let Err(refused) = order.finalize().await else {
        panic!("issued although CAA now forbids it");
    };
    let refused = format!("{refused:?}");
    assert!(refused.contains("caa"), "{refused}");
    assert!(
        refused.contains(name),
        "the subproblem names the identifier: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_outside_the_validation_networks_are_refused() {
    // The test configuration permits 127.0.0.1/32 and ::1/128 only.
    let (_s, _server, account) = running("").await;
    for refused in ["127.0.0.2", "169.254.169.254", "10.0.0.1"] {
        let identifiers = [Identifier::Ip(refused.parse().unwrap())];
        let Err(err) = account.new_order(&NewOrder::new(&identifiers)).await else {
            panic!("an order for {refused} was accepted");
        };
        let text = format!("{err:?}");
        assert!(text.contains("rejectedIdentifier"), "{refused}: {text}");
        assert!(text.contains("does not validate"), "{refused}: {text}");
    }
    let identifiers = [Identifier::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
}
