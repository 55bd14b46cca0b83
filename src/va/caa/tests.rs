//! Table-driven CAA policy against a scripted resolver.

use std::time::Duration;

use super::*;
use crate::va::testing::ScriptedDns;

const US: &str = "ca.example.net";
const ACCOUNT: &str = "https://ca.example.net/acme/default/acct/abc";

struct Case {
    what: &'static str,
    dns: ScriptedDns,
    name: &'static str,
    wildcard: bool,
    method: &'static str,
    /// `None`: allowed; `Some((problem type, text in the detail))`.
    expect: Option<(&'static str, &'static str)>,
}

fn case(what: &'static str, dns: ScriptedDns) -> Case {
    Case {
        what,
        dns,
        name: "www.example.test",
        wildcard: false,
        method: "http-01",
        expect: None,
    }
}

impl Case {
    fn wildcard(mut self) -> Self {
        self.wildcard = true;
        self
    }
    fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn refused(mut self, detail: &'static str) -> Self {
        self.expect = Some(("caa", detail));
        self
    }
    fn dns_failure(mut self) -> Self {
        self.expect = Some(("dns", ""));
        self
    }
}

fn at(records: &[(u8, &str, &str)]) -> ScriptedDns {
    ScriptedDns::default().caa("example.test", records)
}

fn cases() -> Vec<Case> {
    vec![
        case("no records anywhere", ScriptedDns::default()),
        case("issue for us", at(&[(0, "issue", US)])),
        case(
            "issue for us, case and whitespace tolerated",
            at(&[(0, "issue", "  CA.Example.NET ; ")]),
        ),
        case(
            "issue for another CA",
            at(&[(0, "issue", "other-ca.example")]),
        )
        .refused("other-ca.example is another CA"),
        case(
            "one of several issue records is ours",
            at(&[(0, "issue", "other-ca.example"), (0, "issue", US)]),
        ),
        case(
            "only iodef: no restriction",
            at(&[(0, "iodef", "mailto:x@example.test")]),
        ),
        case(
            "issuewild for us overrides issue for a wildcard",
            at(&[(0, "issue", "other-ca.example"), (0, "issuewild", US)]),
        )
        .wildcard(),
        case(
            "issuewild for another CA forbids a wildcard",
            at(&[(0, "issue", US), (0, "issuewild", "other-ca.example")]),
        )
        .wildcard()
        .refused("no issuewild record permits it"),
        case(
            "issuewild is ignored for a non-wildcard",
            at(&[(0, "issue", US), (0, "issuewild", "other-ca.example")]),
        ),
        case(
            "issuewild for us does not help a non-wildcard",
            at(&[(0, "issue", "other-ca.example"), (0, "issuewild", US)]),
        )
        .refused("no issue record permits it"),
        case(
            "a wildcard without issuewild uses issue",
            at(&[(0, "issue", US)]),
        )
        .wildcard(),
        case(
            "tree climbing stops at the first non-empty set",
            ScriptedDns::default()
                .caa("www.example.test", &[(0, "issue", US)])
                .caa("example.test", &[(0, "issue", "other-ca.example")]),
        ),
        case(
            "tree climbing reaches the parent and names it",
            ScriptedDns::default().caa("example.test", &[(0, "issue", "other-ca.example")]),
        )
        .name("a.b.www.example.test")
        .refused("CAA records at example.test forbid issuance for a.b.www.example.test"),
        case(
            "a closer set forbids although the parent permits",
            ScriptedDns::default()
                .caa("www.example.test", &[(0, "issue", ";")])
                .caa("example.test", &[(0, "issue", US)]),
        )
        .refused("CAA records at www.example.test"),
        case("';' forbids every CA", at(&[(0, "issue", ";")])).refused("authorizes no CA"),
        case(
            "an empty issue value forbids every CA",
            at(&[(0, "issue", "")]),
        )
        .refused("authorizes no CA"),
        case(
            "accounturi matches",
            at(&[(0, "issue", &format!("{US}; accounturi={ACCOUNT}"))]),
        ),
        case(
            "accounturi of another account",
            at(&[(0, "issue", &format!("{US}; accounturi={ACCOUNT}x"))]),
        )
        .refused("is another account"),
        case(
            "accounturi on one record, a plain record for us too",
            at(&[
                (0, "issue", &format!("{US}; accounturi={ACCOUNT}x")),
                (0, "issue", US),
            ]),
        ),
        case(
            "validationmethods includes the method",
            at(&[(
                0,
                "issue",
                &format!("{US}; validationmethods=dns-01,http-01"),
            )]),
        ),
        case(
            "validationmethods excludes the method",
            at(&[(0, "issue", &format!("{US}; validationmethods=dns-01"))]),
        )
        .method("tls-alpn-01")
        .refused("does not include tls-alpn-01"),
        case(
            "both parameters, tolerant whitespace, unknown parameter ignored",
            at(&[(
                0,
                "issue",
                &format!("{US} ;\taccounturi = {ACCOUNT} ; policy=ev ; validationmethods=http-01"),
            )]),
        ),
        case(
            "a repeated parameter makes the record unusable",
            at(&[(
                0,
                "issue",
                &format!("{US}; validationmethods=dns-01; validationmethods=http-01"),
            )]),
        )
        .refused("more than once"),
        case(
            "a malformed value authorizes nobody",
            at(&[(0, "issue", "ca.example.net; novalue")]),
        )
        .refused("malformed"),
        case(
            "an unknown critical tag blocks",
            at(&[(0, "issue", US), (128, "tbs", "unknown")]),
        )
        .refused("critical property \"tbs\""),
        case(
            "an unknown non-critical tag is ignored",
            at(&[(0, "issue", US), (0, "tbs", "unknown")]),
        ),
        case("a critical known tag is fine", at(&[(128, "issue", US)])),
        case(
            "tags match case-insensitively",
            at(&[(0, "ISSUE", "other-ca.example")]),
        )
        .refused("another CA"),
        case(
            "SERVFAIL at the name fails",
            ScriptedDns::default().servfail("www.example.test"),
        )
        .dns_failure(),
        case(
            "SERVFAIL at a parent fails",
            ScriptedDns::default().servfail("example.test"),
        )
        .dns_failure(),
        case(
            "SERVFAIL above the relevant set is never asked",
            ScriptedDns::default()
                .caa("www.example.test", &[(0, "issue", US)])
                .servfail("example.test"),
        ),
    ]
}

#[tokio::test]
async fn caa_policy_table() {
    let identities = vec!["other.example".to_owned(), US.to_owned()];
    for c in cases() {
        let request = CaaRequest {
            name: c.name,
            wildcard: c.wildcard,
            identities: &identities,
            account_uri: ACCOUNT,
            method: c.method,
        };
        let outcome = check_caa(&c.dns, &request).await;
        match (c.expect, outcome) {
            (None, Ok(())) => {}
            (Some((kind, detail)), Err(e)) => {
                assert_eq!(e.problem_type(), kind, "{}: {e:?}", c.what);
                assert!(e.to_string().contains(detail), "{}: {e}", c.what);
            }
            (expect, outcome) => panic!("{}: expected {expect:?}, got {outcome:?}", c.what),
        }
    }
}

#[tokio::test]
async fn ip_addresses_have_no_caa() {
    let identities = vec![US.to_owned()];
    let request = CaaRequest {
        name: "192.0.2.1",
        wildcard: false,
        identities: &identities,
        account_uri: ACCOUNT,
        method: "http-01",
    };
    // A resolver that fails every CAA lookup proves none is made.
    let dns = ScriptedDns::default().servfail("192.0.2.1");
    check_caa(&dns, &request).await.unwrap();
}

#[test]
fn issue_values_parse_per_rfc_8659_4_2() {
    assert_eq!(
        IssueValue::parse("ca.example; account=230123").unwrap(),
        IssueValue {
            issuer: Some("ca.example"),
            parameters: vec![("account", "230123")],
        }
    );
    assert_eq!(IssueValue::parse(";").unwrap().issuer, None);
    assert_eq!(IssueValue::parse("  ").unwrap().issuer, None);
    assert!(IssueValue::parse("-bad-.example").is_none());
    assert!(IssueValue::parse("ca..example").is_none());
    assert!(IssueValue::parse("ca.example; =x").is_none());
}

/// Counts CAA lookups in flight; each takes `delay`, or never ends when `hang`.
#[derive(Debug, Default)]
struct Slow {
    delay: Duration,
    hang: bool,
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    asked: std::sync::atomic::AtomicUsize,
}

impl Resolver for Slow {
    fn lookup_ip<'a>(&'a self, _: &'a str) -> crate::va::resolver::LookupFuture<'a> {
        Box::pin(async { Ok(vec![]) })
    }

    fn lookup_caa<'a>(&'a self, _: &'a str) -> crate::va::resolver::CaaFuture<'a> {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(now, SeqCst);
            self.asked.fetch_add(1, SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, SeqCst);
            Ok(CaaAnswer::NoRecords)
        })
    }
}

#[tokio::test]
async fn a_deep_name_is_climbed_a_few_levels_at_a_time_and_within_a_deadline() {
    use std::sync::atomic::Ordering::SeqCst;
    let deep = format!("{}example.test", "a.".repeat(40));
    let slow = Slow {
        delay: Duration::from_millis(5),
        ..Slow::default()
    };
    let found = relevant_rrset(&slow, &deep, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(found.is_none());
    assert_eq!(slow.asked.load(SeqCst), 42);
    assert!(
        slow.peak.load(SeqCst) <= 8,
        "{} at once",
        slow.peak.load(SeqCst)
    );

    let hanging = Slow {
        hang: true,
        ..Slow::default()
    };
    let err = relevant_rrset(&hanging, "www.example.test", Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationFailure::Dns(_)), "{err:?}");
}
