//! Secrets: where each topology uses them (`stackc secrets FILE`), and a file
//! of strong random values for the missing ones (`stackc secrets init FILE`).
//!
//! stackc never reads a secret's value: generated files name the variable
//! (`${DB_PASSWORD:?...}`, a `secretKeyRef`) and nothing else. The values file
//! is for the operator's shell (`set -a; . ./app.secrets.env; set +a`), kept
//! beside the .stack file, out of the output directory, mode 0600.

use indexmap::IndexMap;

use crate::base::Name;
use crate::model::SecretDef;
use crate::plan::{Out, Plan};

/// A secret and its uses in one topology: (host, service, variable).
pub struct Usage<'p> {
    pub name: &'p str,
    pub env: &'p str,
    pub optional: bool,
    pub uses: Vec<(Name, Name, Name)>,
    /// Whether a use puts it inside a URL (`plan::secrets_in_urls`).
    pub in_url: bool,
}

/// The secrets of each topology, with where they are used.
pub fn usages(plan: &Plan) -> IndexMap<&str, Vec<Usage<'_>>> {
    let mut out = IndexMap::new();
    for t in &plan.topologies {
        let mut list: Vec<Usage<'_>> = plan
            .secrets
            .values()
            .map(|s| Usage {
                name: &s.name.name,
                env: &s.env_name,
                optional: s.optional,
                uses: Vec::new(),
                in_url: false,
            })
            .collect();
        for h in &t.hosts {
            for i in &h.services {
                for v in &i.env {
                    for s in crate::plan::secrets_in_urls(&v.value) {
                        if let Some(u) = list.iter_mut().find(|u| u.name == s.name) {
                            u.in_url = true;
                        }
                    }
                    for piece in &v.value {
                        if let Out::Secret(s) = piece {
                            if let Some(u) = list.iter_mut().find(|u| u.name == s.name) {
                                let use_ = (h.name.clone(), i.name.clone(), v.key.clone());
                                if !u.uses.contains(&use_) {
                                    u.uses.push(use_);
                                }
                            }
                        }
                    }
                }
            }
        }
        out.insert(t.name.as_str(), list);
    }
    out
}

/// The report of `stackc secrets FILE`.
pub fn report(plan: &Plan) -> String {
    let mut out = String::new();
    for (topology, list) in usages(plan) {
        out.push_str(&format!("topology {topology}\n"));
        for u in list {
            let what = if u.optional { "optional" } else { "required" };
            if u.uses.is_empty() {
                out.push_str(&format!(
                    "  {} (${}, {what}): not used here\n",
                    u.name, u.env
                ));
                continue;
            }
            let url = if u.in_url {
                format!("; inside a URL: {} only", crate::plan::URL_SAFE)
            } else {
                String::new()
            };
            out.push_str(&format!("  {} (${}, {what}{url})\n", u.name, u.env));
            for (host, service, var) in &u.uses {
                out.push_str(&format!("    {service} on {host}: {var}\n"));
            }
        }
    }
    out
}

/// A strong random value: 32 bytes from the kernel, in hex (safe in URLs,
/// shells and env files).
pub fn random_value() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The variables an env file sets (`NAME=...`, comments skipped).
pub fn names_in(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, _)| k.trim().to_string())
        .collect()
}

/// The required secrets a values file (its `names`) does not set.
pub fn unset<'p>(plan: &'p Plan, names: &[String]) -> Vec<&'p SecretDef> {
    plan.secrets
        .values()
        .filter(|s| !s.optional && !names.iter().any(|n| *n == s.env_name))
        .collect()
}
