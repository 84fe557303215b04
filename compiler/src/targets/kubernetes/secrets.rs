//! `secrets.sh`: the secret keys a topology needs and the command that creates
//! its Secret from environment variables (no value is ever written).

use super::cnpg::{cnpg_backup, cnpg_secret, role_secret, store_secret};
use super::*;
use crate::plan::cnpg_backup::CnpgBackup;

impl Cx<'_> {
    /// `secrets.sh`: the keys the workloads read, and the command that creates the
    /// Secret from environment variables of the same names.
    pub(super) fn secrets_script(&self, instances: &[&Instance], options: &Options) -> String {
        let mut keys: IndexMap<&str, (&str, bool)> = IndexMap::new();
        for inst in instances {
            for var in &inst.env {
                for p in &var.value {
                    if let Out::Secret(s) = p {
                        keys.insert(&s.env, (&s.name, s.optional));
                    }
                }
            }
        }
        // The stores' credentials go to their own Secrets only.
        let mut values = keys.clone();
        for b in instances.iter().filter_map(|i| cnpg_backup(i)) {
            for (name, env) in [&b.store.access_key, &b.store.secret_key] {
                values.insert(env, (name, false));
            }
        }
        let mut s = String::from("#!/bin/sh\n");
        s.push_str(&header("#", options, &self.topo.name));
        s.push_str(&format!(
            "#\n# Creates (or updates) the Secret `{}` in namespace `{}` from environment\n# variables of the same names. No value is stored in this file.\n#\n",
            self.secret_name, self.topo.namespace
        ));
        if values.is_empty() {
            s.push_str("# This topology reads no secret.\nexit 0\n");
            return s;
        }
        s.push_str("# Keys:\n");
        for (env, (name, optional)) in &values {
            let about = self
                .plan
                .secrets
                .get(*name)
                .and_then(|d| d.description.as_deref())
                .map(|d| format!(": {}", d.replace('\n', " ")))
                .unwrap_or_default();
            let what = if *optional { "optional" } else { "required" };
            s.push_str(&format!("#   {env}  ({what}, secret `{name}`){about}\n"));
        }
        s.push_str("set -eu\n");
        for (env, (name, optional)) in &values {
            if !optional {
                s.push_str(&format!(": \"${{{env}:?secret {name} is not set}}\"\n"));
            }
        }
        // A secret inside a URL reaches it unencoded: refuse what would
        // change the URL's meaning (`plan::secrets_in_urls`).
        let in_urls: IndexSet<(&str, &str)> = instances
            .iter()
            .flat_map(|i| &i.env)
            .flat_map(|v| plan::secrets_in_urls(&v.value))
            .map(|s| (s.env.as_str(), s.name.as_str()))
            .collect();
        for (env, name) in in_urls {
            s.push_str(&plan::url_safe_check(
                env,
                true,
                &format!("secret {name} is used inside a URL"),
            ));
        }
        // Each value into a file of its own, by the shell's own `printf`: a
        // value on a program's command line would show in `ps` to every user.
        s.push_str("umask 077\nvalues=$(mktemp -d)\ntrap 'rm -rf \"$values\"' EXIT\n");
        for (env, (_, optional)) in &values {
            let value = if *optional {
                format!("${{{env}:-}}")
            } else {
                format!("${env}")
            };
            s.push_str(&format!("printf '%s' \"{value}\" > \"$values/{env}\"\n"));
        }
        if !keys.is_empty() {
            s.push_str(&format!(
                "kubectl create secret generic {} --namespace {} \\\n",
                self.secret_name, self.topo.namespace
            ));
            for env in keys.keys() {
                s.push_str(&format!("  --from-file={env}=\"$values/{env}\" \\\n"));
            }
            s.push_str("  --dry-run=client -o yaml | kubectl apply -f -\n");
        }
        for inst in instances.iter().filter(|i| i.ha == HaMode::CloudNativePg) {
            s.push_str(&self.cnpg_secrets(inst));
        }
        for inst in instances {
            if let Some(b) = cnpg_backup(inst) {
                s.push_str(&self.store_secret(inst, b));
            }
        }
        s
    }

    /// The `kubernetes.io/basic-auth` Secrets of a CloudNativePG cluster: its
    /// owner's, which it bootstraps from, and each client role's.
    fn cnpg_secrets(&self, inst: &Instance) -> String {
        let mut s = String::new();
        let user = literal(
            inst.parameters
                .params
                .get("user")
                .map_or(&[][..], |v| v.as_slice()),
        )
        .unwrap_or_default();
        if let Some([Out::Secret(secret)]) =
            inst.parameters.params.get("password").map(|v| v.as_slice())
        {
            let why = format!(
                "The owner of the PostgreSQL cluster `{}`, for CloudNativePG's bootstrap.",
                inst.name
            );
            s.push_str(&self.basic_auth(&why, &cnpg_secret(&inst.name), &user, &secret.env));
        }
        for r in self.topo.roles.get(&inst.name).into_iter().flatten() {
            let why = format!(
                "The role of `{}` on `{}`, which CloudNativePG makes.",
                r.client, inst.name
            );
            let name = role_secret(&inst.name, &r.client);
            s.push_str(&self.basic_auth(&why, &name, &r.name, &r.password.env));
        }
        s
    }

    /// The lines that make the basic-auth Secret `name` of `username` and the
    /// password in the secrets' file `env` (a role's name, safe in quotes).
    fn basic_auth(&self, why: &str, name: &str, username: &str, env: &str) -> String {
        format!(
            "# {why}\n\
             kubectl create secret generic {name} --namespace {ns} --type=kubernetes.io/basic-auth \\\n  \
             --from-literal=username='{username}' \\\n  \
             --from-file=password=\"$values/{env}\" \\\n  \
             --dry-run=client -o yaml | kubectl apply -f -\n",
            ns = self.topo.namespace,
        )
    }

    /// The Secret of a CloudNativePG store: its credentials, from the
    /// secrets' files, and its region (a `Place::Region`, safe in quotes).
    fn store_secret(&self, inst: &Instance, b: &CnpgBackup) -> String {
        format!(
            "# The bucket of `{name}`'s backups, for CloudNativePG's Barman Cloud plugin.\n\
             kubectl create secret generic {secret} --namespace {ns} \\\n  \
             --from-file=ACCESS_KEY_ID=\"$values/{key}\" \\\n  \
             --from-file=ACCESS_SECRET_KEY=\"$values/{secret_key}\" \\\n  \
             --from-literal=REGION='{region}' \\\n  \
             --dry-run=client -o yaml | kubectl apply -f -\n",
            name = inst.name,
            secret = store_secret(&inst.name),
            ns = self.topo.namespace,
            key = b.store.access_key.1,
            secret_key = b.store.secret_key.1,
            region = b.store.region,
        )
    }
}
