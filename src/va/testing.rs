//! A scripted [`Resolver`] for unit tests: answers from a table, nothing from the network.

use std::collections::HashMap;
use std::net::IpAddr;

use super::ValidationFailure;
use super::resolver::{CaaAnswer, CaaFuture, CaaRecord, LookupFuture, Resolver, TxtFuture};

/// Names not in a table have no records; names marked `servfail` fail every lookup.
#[derive(Debug, Default)]
pub struct ScriptedDns {
    ips: HashMap<String, Vec<IpAddr>>,
    txt: HashMap<String, Vec<String>>,
    caa: HashMap<String, Vec<CaaRecord>>,
    servfail: Vec<String>,
}

impl ScriptedDns {
    /// Adds addresses for `name`.
    pub fn ip(mut self, name: &str, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|i| i.parse().unwrap()).collect();
        self.ips.insert(name.to_ascii_lowercase(), ips);
        self
    }

    /// Adds TXT records (one string each) at `name`.
    pub fn txt(mut self, name: &str, values: &[&str]) -> Self {
        let values = values.iter().map(|v| (*v).to_owned()).collect();
        self.txt.insert(name.to_ascii_lowercase(), values);
        self
    }

    /// Adds CAA records `(flags, tag, value)` at `name`.
    pub fn caa(mut self, name: &str, records: &[(u8, &str, &str)]) -> Self {
        let records = records
            .iter()
            .map(|(flags, tag, value)| CaaRecord::new(*flags, tag, value))
            .collect();
        self.caa.insert(name.to_ascii_lowercase(), records);
        self
    }

    /// Makes every lookup of `name` fail like SERVFAIL.
    pub fn servfail(mut self, name: &str) -> Self {
        self.servfail.push(name.to_ascii_lowercase());
        self
    }

    fn check(&self, name: &str) -> Result<String, ValidationFailure> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if self.servfail.contains(&key) {
            return Err(ValidationFailure::Dns(format!(
                "DNS lookup for {name} failed: SERVFAIL"
            )));
        }
        Ok(key)
    }
}

impl Resolver for ScriptedDns {
    fn lookup_ip<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            let key = self.check(name)?;
            match self.ips.get(&key) {
                Some(ips) if !ips.is_empty() => Ok(ips.clone()),
                _ => Err(ValidationFailure::Dns(format!(
                    "no A or AAAA records found for {name}"
                ))),
            }
        })
    }

    fn lookup_txt<'a>(&'a self, name: &'a str) -> TxtFuture<'a> {
        Box::pin(async move {
            let key = self.check(name)?;
            Ok(self.txt.get(&key).cloned().unwrap_or_default())
        })
    }

    fn lookup_caa<'a>(&'a self, name: &'a str) -> CaaFuture<'a> {
        Box::pin(async move {
            let key = self.check(name)?;
            Ok(match self.caa.get(&key) {
                Some(records) if !records.is_empty() => CaaAnswer::Records(records.clone()),
                _ => CaaAnswer::NoRecords,
            })
        })
    }
}
