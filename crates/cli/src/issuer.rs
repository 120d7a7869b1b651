//! `captix issuer`: serve, check a policy, give a client a secret (docs §17).

use captix_issuer::grant;
use serde_json::json;

use crate::cli::IssuerCommand;
use crate::error::CliError;
use crate::{render, Output};

pub fn run(command: IssuerCommand) -> Result<Output, CliError> {
    match command {
        IssuerCommand::Serve { config } => {
            captix_issuer::run(&config).map_err(issuer_error)?;
            Ok(Output::ok(String::new()))
        }
        IssuerCommand::CheckPolicy {
            file,
            client,
            user,
            scopes,
            resource,
            details,
            json,
        } => check_policy(
            &file,
            &client,
            user.as_deref(),
            &scopes,
            resource.as_deref(),
            details.as_deref(),
            json,
        ),
        IssuerCommand::ClientSecret { config, client } => {
            let issuer = captix_issuer::Issuer::open(&config).map_err(issuer_error)?;
            let secret = issuer.new_client_secret(&client).map_err(issuer_error)?;
            let mut out = Output::ok(format!("{}\n", secret.as_str()));
            out.notes = format!(
                "client {client:?} has a new secret (shown once; its hash is stored, any old secret no longer works)\n"
            );
            Ok(out)
        }
    }
}

fn issuer_error(e: captix_issuer::Error) -> CliError {
    let hint = match &e {
        captix_issuer::Error::Config { .. } => Some("docs/issuer.md §17.1 describes the file"),
        captix_issuer::Error::Key { .. } => {
            Some("create one with `captix keygen --out NAME` and name NAME.key under keys")
        }
        _ => None,
    };
    let mut err = CliError::io(e.to_string());
    err.code = e.code();
    match hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

fn check_policy(
    file: &std::path::Path,
    client: &str,
    user: Option<&str>,
    scopes: &[String],
    resource: Option<&str>,
    details: Option<&str>,
    json: bool,
) -> Result<Output, CliError> {
    let config = captix_issuer::Config::load(file).map_err(issuer_error)?;
    let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
    let req = grant::Request {
        client,
        user,
        scope: scope.as_deref(),
        resource,
        details,
    };
    let g = match grant::decide(&config.policy, &req) {
        Ok(g) => g,
        Err(e) => {
            let text = if json {
                format!("{}\n", json!({ "granted": false, "error": e.body() }))
            } else {
                format!("refused: {} ({})\n", e.description, e.code)
            };
            return Ok(Output::exit(text, 1));
        }
    };
    // Signed with a throwaway key: the output shows the contents, and no secret is needed.
    let key = captix::SigningKey::generate();
    let ticket = g
        .mint(&key, &config.issuer, crate::now())
        .map_err(|e| CliError::io(format!("could not mint: {e}")))?;
    let report = ticket.inspect();
    if json {
        let v = json!({
            "granted": true,
            "scope": g.scopes.join(" "),
            "resource": g.resource,
            "expires_in": g.lifetime,
            "ticket": report,
        });
        let text = serde_json::to_string_pretty(&v).map_err(|e| CliError::io(e.to_string()))?;
        return Ok(Output::ok(format!("{text}\n")));
    }
    let mut out = format!(
        "policy ok: {client} acting for {} gets scope {:?} for {} ({}s)\n\
         the ticket it would mint (signed here with a throwaway key):\n\n",
        g.user,
        g.scopes.join(" "),
        g.resource,
        g.lifetime
    );
    out.push_str(&render::inspect_text(&report, false, None));
    Ok(Output::ok(out))
}
