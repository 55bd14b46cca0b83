//! CAA checking (RFC 8659, with the RFC 8657 `accounturi` and `validationmethods`
//! parameters): may this CA issue for a name, for this account, after this validation
//! method?
//!
//! [`check_caa`] climbs the DNS tree to the relevant RRset; [`evaluate`] is the pure policy
//! over that set. The RA calls [`check_caa`] for every dns identifier before issuance. A
//! failed lookup never counts as permission: it is a `dns` failure, and a refusal is a `caa`
//! failure whose detail names the domain where the records were found.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;

use super::ValidationFailure;
use super::resolver::{CaaAnswer, CaaRecord, Resolver};

/// Property tags this CA understands (RFC 8659 §4.2–4.4; `contactemail` and `contactphone`
/// are registered by the CA/Browser Forum and carry no issuance policy).
const KNOWN_TAGS: &[&str] = &[
    "issue",
    "issuewild",
    "iodef",
    "contactemail",
    "contactphone",
];

/// CAA lookups in flight at once for one name (a name may have 127 labels).
const PARALLEL_LOOKUPS: usize = 8;
/// Deadline for the whole climb; running out is a `dns` failure, never permission.
const CLIMB_DEADLINE: Duration = Duration::from_secs(10);

/// What one CAA check is about.
#[derive(Debug, Clone, Copy)]
pub struct CaaRequest<'a> {
    /// The name, without a leading `*.`.
    pub name: &'a str,
    /// Whether the certificate is for `*.name` (RFC 8659 §4.3: `issuewild` applies).
    pub wildcard: bool,
    /// This CA's issuer domain names, as subscribers write them in `issue` records.
    pub identities: &'a [String],
    /// The ACME account URL (RFC 8657 §3 `accounturi`).
    pub account_uri: &'a str,
    /// The validation method used, e.g. `http-01` (RFC 8657 §4 `validationmethods`).
    pub method: &'a str,
}

/// Checks CAA for `request`: `Ok` if issuance is permitted, `Caa` if the records forbid it,
/// `Dns` if a lookup failed. IP addresses have no CAA (RFC 8738 §7 defines none) and pass.
pub async fn check_caa(
    resolver: &dyn Resolver,
    request: &CaaRequest<'_>,
) -> Result<(), ValidationFailure> {
    let name = request.name.trim_end_matches('.');
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    match relevant_rrset(resolver, name, CLIMB_DEADLINE).await? {
        None => Ok(()),
        Some((found_at, records)) => evaluate(&found_at, &records, request),
    }
}

/// RFC 8659 §3: the relevant RRset is the first non-empty CAA RRset found walking from the
/// name towards the root, the root itself excluded. `None` if there is none. The whole
/// climb must end within `deadline`.
pub async fn relevant_rrset(
    resolver: &dyn Resolver,
    name: &str,
    deadline: Duration,
) -> Result<Option<(String, Vec<CaaRecord>)>, ValidationFailure> {
    let name = name.trim_end_matches('.');
    let mut candidates = Vec::new();
    let mut candidate = name;
    while !candidate.is_empty() {
        candidates.push(candidate);
        candidate = match candidate.split_once('.') {
            Some((_, parent)) => parent,
            None => "",
        };
    }
    // Up to PARALLEL_LOOKUPS levels are asked at once, so a short name costs one round
    // trip; the answers are read from the name upwards exactly as a sequential climb would:
    // the first non-empty set wins (later lookups are dropped), and a failure below it is a
    // failure.
    // Futures are lazy: made up front (boxed, so the stream's type names no closure), they
    // start only as `buffered` polls them.
    type Lookup<'a> = std::pin::Pin<
        Box<dyn Future<Output = (&'a str, Result<CaaAnswer, ValidationFailure>)> + Send + 'a>,
    >;
    let lookups: Vec<Lookup<'_>> = candidates
        .iter()
        .map(|c| {
            let c: &str = c;
            Box::pin(async move { (c, resolver.lookup_caa(c).await) }) as Lookup<'_>
        })
        .collect();
    let climb = async {
        let mut answers = futures_util::stream::iter(lookups).buffered(PARALLEL_LOOKUPS);
        while let Some((candidate, answer)) = answers.next().await {
            if let CaaAnswer::Records(records) = answer?
                && !records.is_empty()
            {
                return Ok(Some((candidate.to_owned(), records)));
            }
        }
        Ok(None)
    };
    tokio::time::timeout(deadline, climb).await.map_err(|_| {
        ValidationFailure::Dns(format!(
            "CAA lookups for {name} did not finish within {} s",
            deadline.as_secs()
        ))
    })?
}

/// The policy over a relevant RRset found at `found_at` (RFC 8659 §4, RFC 8657).
pub fn evaluate(
    found_at: &str,
    records: &[CaaRecord],
    request: &CaaRequest<'_>,
) -> Result<(), ValidationFailure> {
    let refuse = |why: String| {
        ValidationFailure::Caa(format!(
            "CAA records at {found_at} forbid issuance for {}{}: {why}",
            if request.wildcard { "*." } else { "" },
            request.name
        ))
    };
    // RFC 8659 §4.1: a critical property with an unknown tag forbids issuance.
    if let Some(unknown) = records
        .iter()
        .find(|r| r.critical() && !KNOWN_TAGS.iter().any(|t| r.tag.eq_ignore_ascii_case(t)))
    {
        return Err(refuse(format!(
            "the critical property {:?} is not understood",
            unknown.tag
        )));
    }
    let with_tag = |tag: &str| -> Vec<&CaaRecord> {
        records
            .iter()
            .filter(|r| r.tag.eq_ignore_ascii_case(tag))
            .collect()
    };
    // RFC 8659 §4.3: for a wildcard, issuewild (if any) replaces issue; otherwise issuewild
    // is ignored.
    let (tag, relevant) = match with_tag("issuewild") {
        wild if request.wildcard && !wild.is_empty() => ("issuewild", wild),
        _ => ("issue", with_tag("issue")),
    };
    if relevant.is_empty() {
        // RFC 8659 §4.2: without issue properties, no restriction on issuance.
        return Ok(());
    }
    let mut reasons = Vec::new();
    for record in &relevant {
        match permits(record, request) {
            Ok(()) => return Ok(()),
            Err(why) => reasons.push(why),
        }
    }
    Err(refuse(format!(
        "no {tag} record permits it ({})",
        reasons.join("; ")
    )))
}

/// Whether one issue/issuewild record permits issuance; `Err` says why not.
fn permits(record: &CaaRecord, request: &CaaRequest<'_>) -> Result<(), String> {
    let value = String::from_utf8_lossy(&record.value);
    let parsed = IssueValue::parse(&value).ok_or_else(|| format!("malformed value {value:?}"))?;
    let Some(issuer) = parsed.issuer else {
        // RFC 8659 §4.2: an empty issuer-domain-name authorizes no CA.
        return Err(format!("{value:?} authorizes no CA"));
    };
    if !request
        .identities
        .iter()
        .any(|id| id.trim_end_matches('.').eq_ignore_ascii_case(issuer))
    {
        return Err(format!("{issuer} is another CA"));
    }
    let mut account_uri = None;
    let mut methods = None;
    for (key, val) in &parsed.parameters {
        let slot = if key.eq_ignore_ascii_case("accounturi") {
            &mut account_uri
        } else if key.eq_ignore_ascii_case("validationmethods") {
            &mut methods
        } else {
            // RFC 8659 §4.2: parameters this CA does not know are ignored.
            continue;
        };
        if slot.replace(*val).is_some() {
            // RFC 8657 §3/§4: a repeated parameter makes the record unusable.
            return Err(format!("{key} appears more than once in {value:?}"));
        }
    }
    // RFC 8657 §3: the account URI must match exactly.
    if let Some(uri) = account_uri
        && uri != request.account_uri
    {
        return Err(format!("accounturi {uri} is another account"));
    }
    // RFC 8657 §4: a comma-separated list of method labels.
    if let Some(list) = methods
        && !list.split(',').any(|m| m.trim() == request.method)
    {
        return Err(format!(
            "validationmethods {list} does not include {}",
            request.method
        ));
    }
    Ok(())
}

/// An `issue`/`issuewild` value (RFC 8659 §4.2):
/// `*WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]`.
#[derive(Debug, PartialEq, Eq)]
struct IssueValue<'a> {
    issuer: Option<&'a str>,
    parameters: Vec<(&'a str, &'a str)>,
}

impl<'a> IssueValue<'a> {
    /// `None` if the value is malformed (such a record authorizes no CA).
    fn parse(value: &'a str) -> Option<Self> {
        let (domain, rest) = match value.split_once(';') {
            Some((domain, rest)) => (domain, Some(rest)),
            None => (value, None),
        };
        let domain = domain.trim_matches(is_wsp);
        let issuer = if domain.is_empty() {
            None
        } else if is_domain(domain) {
            Some(domain)
        } else {
            return None;
        };
        let mut parameters = Vec::new();
        for parameter in rest.into_iter().flat_map(|r| r.split(';')) {
            let parameter = parameter.trim_matches(is_wsp);
            if parameter.is_empty() {
                continue;
            }
            let (tag, val) = parameter.split_once('=')?;
            let (tag, val) = (tag.trim_matches(is_wsp), val.trim_matches(is_wsp));
            // tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
            // value = *(%x21-3A / %x3C-7E)
            if tag.is_empty()
                || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || !val.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';')
            {
                return None;
            }
            parameters.push((tag, val));
        }
        Some(Self { issuer, parameters })
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// issuer-domain-name = label *("." label); label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
fn is_domain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
    })
}

#[cfg(test)]
mod tests;
