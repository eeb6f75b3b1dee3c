//! Configuration from flags and the environment: the authority, and secrets (from variables
//! or standard input, never argv).

use std::io::{BufRead, Read};

use b2c_token::{authority::AuthorityKind, authority::Cloud, authority::PolicyForm, Authority};

use crate::args::AuthorityArgs;
use crate::{usage, Failure};

/// The authority from typed flags, each setting not given as a flag read from its variable.
/// A flag beats any variable; `--token-url` or `B2C_TOKEN_URL` is used as given unless
/// `--tenant`/`--policy` flags ask for a B2C authority.
pub(crate) fn authority(args: &AuthorityArgs) -> Result<Authority, Failure> {
    if let Some(url) = &args.token_url {
        return Ok(Authority::from_token_url(url)?);
    }
    let kind = match args.authority {
        Some(kind) => kind,
        None => var("B2C_AUTHORITY")
            .map(|value| value.parse::<AuthorityKind>())
            .transpose()?
            .unwrap_or(AuthorityKind::B2c),
    };
    if kind != AuthorityKind::B2c {
        // The library's own reading of the variables, with the flags laid over them.
        let overlay = |name: &str| -> Option<String> {
            match name {
                "B2C_AUTHORITY" => Some(kind.to_string()),
                // Not a B2C URL: the flag asked for another service.
                "B2C_TOKEN_URL" => None,
                "B2C_TENANT" => args.tenant.clone().or_else(|| var(name)),
                "B2C_TENANT_ID" => args.tenant_id.clone().or_else(|| var(name)),
                "B2C_DOMAIN" => args.domain.clone().or_else(|| var(name)),
                "B2C_CLOUD" => args.cloud.map(|cloud| cloud.to_string()).or_else(|| var(name)),
                _ => var(name),
            }
        };
        return Ok(Authority::from_vars(overlay)?);
    }
    let b2c_flags = args.tenant.is_some() || args.policy.is_some();
    if !b2c_flags {
        if let Some(url) = var("B2C_TOKEN_URL") {
            return Ok(Authority::from_token_url(&url)?);
        }
    }
    let (Some(tenant), Some(policy)) = (
        args.tenant.clone().or_else(|| var("B2C_TENANT")),
        args.policy.clone().or_else(|| var("B2C_POLICY")),
    ) else {
        return Err(usage(
            "give --tenant and --policy (or B2C_TENANT and B2C_POLICY), or --token-url (or B2C_TOKEN_URL)",
        ));
    };
    let mut builder = Authority::builder(&tenant, &policy);
    if let Some(id) = args.tenant_id.clone().or_else(|| var("B2C_TENANT_ID")) {
        builder = builder.tenant_id(&id);
    }
    if let Some(base) = args.domain.clone().or_else(|| var("B2C_DOMAIN")) {
        builder = builder.base_url(&base);
    }
    let cloud = match args.cloud {
        Some(cloud) => Some(cloud),
        None => var("B2C_CLOUD").map(|value| value.parse::<Cloud>()).transpose()?,
    };
    if let Some(cloud) = cloud {
        builder = builder.cloud(cloud);
    }
    let form = if args.query_policy {
        Some(PolicyForm::Query)
    } else if args.tfp {
        Some(PolicyForm::Tfp)
    } else {
        var("B2C_POLICY_FORM")
            .map(|value| value.parse::<PolicyForm>())
            .transpose()?
    };
    if let Some(form) = form {
        builder = builder.policy_form(form);
    }
    Ok(builder.build()?)
}

/// The most bytes read from standard input for a secret: secrets are short, and an endless
/// or huge input must not eat memory.
pub(crate) const MAX_STDIN_SECRET: u64 = 64 * 1024;

/// A setting's variable, unless unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// Where the client secret is read from, first set first (as `ClientBuilder::from_env`).
pub(crate) const CLIENT_SECRET_VARIABLES: &[&str] = &["B2C_CLIENT_SECRET", "AZURE_CLIENT_SECRET"];

/// A secret from standard input (first line) or from the first of `variables` that is set,
/// never argv.
pub(crate) fn secret(variables: &[&str], from_stdin: bool, what: &str) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_STDIN_SECRET + 1)
            .read_line(&mut line)
            .map_err(|e| usage(format!("cannot read the {what} from standard input: {e}")))?;
        if line.len() as u64 > MAX_STDIN_SECRET {
            return Err(usage(format!(
                "the {what} on standard input is longer than {} KiB: pass the secret alone on the first line",
                MAX_STDIN_SECRET / 1024
            )));
        }
        let value = line.trim_end_matches(['\r', '\n']).to_owned();
        if value.is_empty() {
            return Err(usage(format!("standard input held no {what}")));
        }
        return Ok(value);
    }
    secret_variable(variables).ok_or_else(|| {
        usage(format!(
            "set {} or pass --{}-stdin: secrets are never taken as arguments",
            variables.join(" or "),
            what.replace(' ', "-")
        ))
    })
}

/// The first of `variables` that is set and not empty.
pub(crate) fn secret_variable(variables: &[&str]) -> Option<String> {
    variables
        .iter()
        .find_map(|variable| std::env::var(variable).ok().filter(|v| !v.is_empty()))
}
